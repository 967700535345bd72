"""The common shell of every service app: middleware, errors, health, metrics and job routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select

from bio_shared.db import check_database
from bio_shared.errors import BioError, NotFound, error_body
from bio_shared.identity import Identity, require_admin
from bio_shared.job_events import job_events_router
from bio_shared.jobs import JobStatus, job_to_dict
from bio_shared.logging import RequestIdMiddleware, configure_logging
from bio_shared.runtime import ServiceRuntime
from bio_shared.schemas import ErrorResponse, JobList, JobOut
from bio_shared.web.errors import install_error_handlers
from bio_shared.web.metrics import MetricsMiddleware, metrics_response
from bio_shared.web.pagination import PageDep

# Room for multipart framing and form fields on top of the largest accepted file.
MULTIPART_OVERHEAD = 1024 * 1024

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No valid gateway identity"},
    404: {"model": ErrorResponse, "description": "Not found (or owned by another account)"},
}


def probe_dependencies(settings: Any) -> dict[str, str]:
    """Readiness: the database answers, and Redis too when one is configured."""
    checks: dict[str, str] = {}
    try:
        check_database(settings.database_url)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    if settings.redis_url:
        try:
            client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
            client.ping()
            client.close()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
    return checks


def add_probes(app: FastAPI, settings: Any, service: str) -> None:
    @app.get("/healthz", tags=["health"], include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @app.get("/readyz", tags=["health"], include_in_schema=False)
    def readyz() -> JSONResponse:
        checks = probe_dependencies(settings)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return metrics_response()


def jobs_router(rt: ServiceRuntime[Any]) -> APIRouter:
    router = APIRouter(prefix=f"{rt.prefix}/jobs", tags=[f"{rt.name} jobs"], responses=ERROR_RESPONSES)

    @router.get("", response_model=JobList, summary="List the caller's jobs, newest first")
    def list_jobs(page: PageDep, identity: Identity = Depends(rt.require_identity)) -> dict[str, Any]:
        items = [job_to_dict(j, rt.jobs) for j in rt.jobs.list(identity, page.limit, page.offset)]
        return {"items": items, "total": count_jobs(rt, identity), "limit": page.limit, "offset": page.offset}

    @router.get("/{job_id}", response_model=JobOut, summary="Job status, read from the database")
    def get_job(job_id: str, identity: Identity = Depends(rt.require_identity)) -> dict[str, Any]:
        return job_to_dict(rt.jobs.get(job_id, identity), rt.jobs)

    return router


def count_jobs(rt: ServiceRuntime[Any], identity: Identity) -> int:
    model: Any = rt.jobs.model
    stmt = select(func.count()).select_from(model).where(model.owner_id == identity.account_id)
    with rt.sessions() as s:
        return int(s.scalar(stmt) or 0)


def admin_router(rt: ServiceRuntime[Any]) -> APIRouter:
    router = APIRouter(prefix=f"{rt.prefix}/admin", tags=[f"{rt.name} admin"], responses=ERROR_RESPONSES)

    @router.delete("/owners/{owner_id}", summary="Delete all data of an account (the gateway calls this when "
                   "an admin deletes the account)")
    def purge_owner(owner_id: str, identity: Identity = Depends(rt.require_identity)) -> dict[str, Any]:
        require_admin(identity)
        return {"owner_id": owner_id, "deleted": rt.purge_owner(owner_id)}

    return router


def accepted(job: Any, rt: ServiceRuntime[Any]) -> JSONResponse:
    """The 202 answer of every job submission."""
    body = JobOut.model_validate(job_to_dict(job, rt.jobs)).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": rt.jobs.status_url(job.id)})


def finished_job(rt: ServiceRuntime[Any], job_id: str, identity: Identity) -> Any:
    job = rt.jobs.get(job_id, identity)
    if job.status != JobStatus.succeeded.value:
        raise BioError(f"job is {job.status}; its output exists once it has succeeded", code="job_not_finished",
                       status_code=409)
    if not job.result:
        raise NotFound("job has no output")
    return job


def create_service_app(
    rt: ServiceRuntime[Any],
    *,
    title: str,
    description: str,
    routers: Iterable[APIRouter],
    on_startup: Callable[[], None] | None = None,
) -> FastAPI:
    configure_logging(rt.name, rt.settings.log_level, rt.settings.log_json)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if on_startup:
            on_startup()  # models are loaded here, once per process
        try:
            rt.jobs.reap(pending_after_s=0 if rt.settings.jobs_in_process else None)
        except Exception:
            pass
        rt.start_reaper()
        yield
        rt.stop()

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan,
                  docs_url=f"{rt.prefix}/docs", openapi_url=f"{rt.prefix}/openapi.json", redoc_url=None)
    app.state.runtime = rt
    install_error_handlers(app)
    add_probes(app, rt.settings, rt.name)
    app.include_router(jobs_router(rt))
    app.include_router(admin_router(rt))
    app.include_router(job_events_router(rt))
    for router in routers:
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=rt.settings.max_upload_bytes + MULTIPART_OVERHEAD)
    app.add_middleware(MetricsMiddleware, service=rt.name)
    app.add_middleware(RequestIdMiddleware, service=rt.name)
    return app


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413 before the app buffers them (Starlette
    would otherwise spool a whole multipart upload to disk first). Checks Content-Length, then counts
    streamed bytes; on overflow it answers 413 itself and tells the app the client went away."""

    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", ()):
            if k == b"content-length" and v.isdigit() and int(v) > self.max_bytes:
                await self._reject(send)
                return
        seen = 0
        rejected = False

        async def limited_receive() -> dict[str, Any]:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    rejected = True
                    await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            if not rejected:  # the 413 has been sent; drop whatever the app still says
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _reject(self, send: Any) -> None:
        body = json.dumps(error_body("payload_too_large", f"request body exceeds {self.max_bytes} bytes",
                                     {"limit_bytes": self.max_bytes})).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
