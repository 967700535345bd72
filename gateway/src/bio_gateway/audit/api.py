"""GET /api/v1/audit (filtered, paginated) and /api/v1/audit/export (JSON lines).

Admins read every chain and may filter by account; any other account reads its own entries only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from bio_gateway.api.deps import current_principal
from bio_gateway.audit.store import AuditFilter, AuditLog, entry_dict
from bio_gateway.service import Principal
from bio_shared.app import ERROR_RESPONSES
from bio_shared.errors import Forbidden

router = APIRouter(prefix="/api/v1/audit", tags=["gateway: audit"], responses=ERROR_RESPONSES)


class AuditEntryOut(BaseModel):
    id: int
    seq: int
    at: datetime
    account_id: str
    credential: str
    action: str
    method: str
    path: str
    resources: dict[str, Any]
    status: int
    outcome: str
    request_id: str
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


def audit_log(request: Request) -> AuditLog:
    return request.app.state.audit


def audit_filter(
    principal: Annotated[Principal, Depends(current_principal)],
    account_id: Annotated[str | None, Query(max_length=32, description="admins only: one account's chain")] = None,
    action: Annotated[str | None, Query(max_length=64, description="e.g. fingerprint.identify")] = None,
    resource: Annotated[str | None, Query(max_length=128, description="any resource id of the entry")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
) -> AuditFilter:
    if principal.role != "admin":
        if account_id not in (None, principal.account_id):
            raise Forbidden("only admins read other accounts' audit entries", code="admin_required")
        account_id = principal.account_id
    return AuditFilter(account_id=account_id, action=action, resource=resource, since=since, until=until)


FilterDep = Annotated[AuditFilter, Depends(audit_filter)]
AuditDep = Annotated[AuditLog, Depends(audit_log)]


@router.get("", response_model=AuditPage, operation_id="gateway_list_audit",
            summary="Audit entries, newest first (an account's own, or any for admins)")
async def list_audit(f: FilterDep, audit: AuditDep,
                     limit: Annotated[int, Query(ge=1, le=500)] = 50,
                     offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> AuditPage:
    rows, total = await run_in_threadpool(audit.query, f, limit, offset)
    return AuditPage(items=[AuditEntryOut.model_validate(entry_dict(r)) for r in rows], total=total,
                     limit=limit, offset=offset)


@router.get("/export", operation_id="gateway_export_audit", response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {}}, "description": "one entry per line"}},
            summary="Audit entries as JSON lines, oldest first, with the same filters")
async def export_audit(f: FilterDep, audit: AuditDep) -> StreamingResponse:
    return StreamingResponse(audit.export(f), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'})
