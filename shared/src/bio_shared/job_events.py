"""``GET {prefix}/admin/job-events``: finished jobs after a cursor, for the gateway's webhooks.

Internal (admin identity, which only the gateway signs; the public gateway never routes /admin/):
ids, kinds and outcomes only, never parameters or results.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import and_, or_, select

from bio_shared.identity import Identity, require_admin
from bio_shared.jobs import FINAL
from bio_shared.runtime import ServiceRuntime


def finished_after(rt: ServiceRuntime, after: datetime, after_id: str, limit: int) -> list[dict[str, Any]]:
    m: Any = rt.jobs.model  # the service's Job(JobMixin, Base) class
    with rt.sessions() as db:
        rows = db.scalars(select(m).where(
            m.status.in_(FINAL), m.finished_at.is_not(None),
            or_(m.finished_at > after, and_(m.finished_at == after, m.id > after_id)),
        ).order_by(m.finished_at, m.id).limit(limit))
        return [{"id": j.id, "owner_id": j.owner_id, "kind": j.kind, "status": j.status,
                 "error_code": (j.error or {}).get("code"), "finished_at": j.finished_at.isoformat()} for j in rows]


def job_events_router(rt: ServiceRuntime) -> APIRouter:
    router = APIRouter(prefix=f"{rt.prefix}/admin", tags=[f"{rt.name} admin"], include_in_schema=False)

    @router.get("/job-events", summary="Finished jobs after a cursor (the gateway's webhook source)")
    # The identity dependency is a default, not an Annotated alias: the closure's rt is not visible
    # where postponed annotations are evaluated.
    def job_events(after: datetime, after_id: Annotated[str, Query(max_length=32)] = "",
                   limit: Annotated[int, Query(ge=1, le=500)] = 200,
                   identity: Identity = Depends(rt.require_identity)) -> dict[str, Any]:
        require_admin(identity)
        return {"items": finished_after(rt, after, after_id, limit)}

    return router
