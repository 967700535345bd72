"""Jobs of every service with live progress (the status fragment is polled while a job runs)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from bio_gateway.console.client import Api, ApiError
from bio_gateway.console.render import page, templates
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute
from bio_gateway.routes import ROUTES

router = APIRouter(prefix=f"{PREFIX}/jobs", route_class=ConsoleRoute, include_in_schema=False)
LABELS = {"fingerprint": "Fingerprint", "face_recognition": "Face recognition", "face_verify": "Face verify",
          "contour_mask": "Contour masks"}
PER_SERVICE = 25
FINAL = ("succeeded", "failed")


def job_page_url(service: str, job: dict[str, Any]) -> str:
    if service == "contour_mask" and job.get("kind") == "contours":
        return f"{PREFIX}/contours/{job['id']}"
    return f"{PREFIX}/jobs/{service}/{job['id']}"


def _decorate(service: str, job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "service": service, "service_label": LABELS.get(service, service),
            "url": job_page_url(service, job), "final": job.get("status") in FINAL,
            "status_fragment": f"{PREFIX}/jobs/{service}/{job['id']}/status"}


async def get_job(api: Api, service: str, job_id: str) -> dict[str, Any]:
    if service not in ROUTES:
        raise ApiError(404, "service_not_found", f"no service called {service!r}")
    return _decorate(service, await api.get(f"{ROUTES[service]}/jobs/{job_id}"))


@router.get("")
async def jobs(request: Request, api: ApiDep) -> Response:
    rows, unavailable = [], []
    for service, prefix in ROUTES.items():
        try:
            listing = await api.get(f"{prefix}/jobs", limit=PER_SERVICE)
        except ApiError:
            unavailable.append(LABELS.get(service, service))
            continue
        rows += [_decorate(service, j) for j in listing.get("items", [])]
    rows.sort(key=lambda j: j.get("created_at") or "", reverse=True)
    return await page(request, api, "jobs.html", jobs=rows, unavailable=unavailable)


@router.get("/{service}/{job_id}")
async def job(request: Request, api: ApiDep, service: str, job_id: str) -> Response:
    j = await get_job(api, service, job_id)
    pretty = json.dumps(j.get("result") or j.get("error"), indent=2, ensure_ascii=False)[:20000]
    return await page(request, api, "job.html", job=j, pretty=pretty)


@router.get("/{service}/{job_id}/status")
async def status(request: Request, api: ApiDep, service: str, job_id: str, reload: int = 0) -> Response:
    """The progress fragment (htmx). With reload=1 the page reloads once the job has finished, so it
    shows the result."""
    j = await get_job(api, service, job_id)
    response = templates.TemplateResponse(request, "_job_status.html", {"job": j, "reload": reload})
    if reload and j["final"]:
        response.headers["HX-Refresh"] = "true"
    return response
