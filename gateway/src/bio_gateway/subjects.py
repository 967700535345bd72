"""/api/v1/subjects/{ref}: export everything held about one person or fingerprint subject of the
caller's account across all services as one zip, or erase it everywhere (idempotent; the audit trail
keeps the fact of the request, never the data)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import zipfile
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from bio_gateway.api.deps import current_principal
from bio_gateway.audit.store import AuditFilter, AuditLog, entry_dict
from bio_gateway.proxy import Upstream, UpstreamError
from bio_gateway.service import Principal
from bio_shared.app import ERROR_RESPONSES
from bio_shared.db import utcnow
from bio_shared.errors import ServiceUnavailable
from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity
from bio_shared.logging import request_id_var

router = APIRouter(prefix="/api/v1/subjects", tags=["gateway: subjects"], responses=ERROR_RESPONSES)
Ref = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f/]+$",
                          description="a fingerprint subject, or a face-recognition person id or name")]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def _fan_out(request: Request, principal: Principal, method: str, suffix: str) -> dict[str, Any]:
    settings = request.app.state.settings
    token = sign_identity(Identity(principal.account_id, principal.role, request_id_var.get()),
                          settings.internal_secret, settings.identity_ttl_s)
    headers = {IDENTITY_HEADER: token, "x-request-id": request_id_var.get() or ""}

    async def one(u: Upstream) -> tuple[str, Any]:
        try:
            status, body = await u.request_json(method, f"{u.prefix}/subjects/{suffix}", headers)
        except UpstreamError as exc:
            return u.name, exc.kind
        if status == 404 and not (isinstance(body, dict) and body.get("service")):
            return u.name, None  # this service keeps nothing per subject
        return u.name, body if status == 200 else f"HTTP {status}"

    results = dict(await asyncio.gather(*(one(u) for u in request.app.state.upstreams.values())))
    failed = {k: v for k, v in results.items() if isinstance(v, str)}
    if failed:
        raise ServiceUnavailable("some services could not answer; repeat the request", code="subject_incomplete",
                                 details=failed)
    return {k: v for k, v in results.items() if v is not None}


def _ids(records: list[dict[str, Any]]) -> set[str]:
    return {str(r[k]) for r in records for k in ("id", "template_id", "person_id", "event_id") if r.get(k)}


@router.get("/{ref}/export", operation_id="gateway_export_subject", response_class=Response,
            responses={200: {"content": {"application/zip": {}}, "description": "one zip across all services"}},
            summary="Everything held about one subject, across all services, as one zip")
async def export_subject(ref: Ref, request: Request, principal: PrincipalDep) -> Response:
    parts = await _fan_out(request, principal, "GET", f"{quote(ref, safe='')}/export")
    audit: AuditLog = request.app.state.audit
    wanted = {ref} | {i for body in parts.values() for i in _ids(body["records"])}

    def audit_lines() -> list[str]:
        rows, _ = audit.query(AuditFilter(account_id=principal.account_id), 10**9, 0)
        hit = [entry_dict(r) for r in reversed(rows)
               if wanted & {str(v) for vs in r.resources.values() for v in (vs if isinstance(vs, list) else [vs])}]
        return [json.dumps(e, sort_keys=True, default=str) for e in hit]

    lines = await run_in_threadpool(audit_lines)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        manifest = {"ref": ref, "account_id": principal.account_id, "exported_at": utcnow().isoformat(),
                    "services": {k: {"records": len(v["records"]), "files": len(v["files"])} for k, v in parts.items()},
                    "audit_entries": len(lines)}
        zf.writestr("manifest.json", json.dumps(manifest, indent=1))
        zf.writestr("audit.jsonl", "".join(line + "\n" for line in lines))
        for service, body in sorted(parts.items()):
            zf.writestr(f"{service}/records.json", json.dumps(body["records"], indent=1))
            for f in body["files"]:
                zf.writestr(f"{service}/{f['name']}", base64.b64decode(f["content_b64"]))
    name = quote(ref, safe="")
    return Response(buf.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="subject-{name}.zip"'})


@router.delete("/{ref}", operation_id="gateway_erase_subject",
               summary="Erase one subject in every service (idempotent; repeat after a 503)")
async def erase_subject(ref: Ref, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    parts = await _fan_out(request, principal, "DELETE", quote(ref, safe=""))
    return {"ref": ref, "deleted": {k: v["deleted"] for k, v in sorted(parts.items())}}
