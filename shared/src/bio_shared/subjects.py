"""Data-subject export and erasure, the part every service shares.

A service that holds data about people registers a provider; the routes below give the gateway (and
the account itself) everything the service holds about one subject of the caller's account, or erase
it. Erasure is idempotent: a second call finds nothing and deletes nothing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import APIRouter, Depends, Path

from bio_shared.identity import Identity
from bio_shared.runtime import ServiceRuntime

SubjectRef = Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f/]+$",
                  description="a fingerprint subject, or a face-recognition person id or name")


@dataclass
class SubjectExport:
    records: list[dict[str, Any]] = field(default_factory=list)  # JSON metadata, one per stored item
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content (images, templates)


class SubjectProvider(Protocol):
    def export(self, owner_id: str, ref: str) -> SubjectExport: ...

    def erase(self, owner_id: str, ref: str) -> dict[str, int]: ...


def subjects_router(rt: ServiceRuntime, provider: SubjectProvider) -> APIRouter:
    router = APIRouter(prefix=f"{rt.prefix}/subjects", tags=[f"{rt.name}: subjects"])

    @router.get("/{ref}/export", operation_id=f"{rt.name}_export_subject",
                summary="Everything this service holds about one subject of the caller's account")
    def export_subject(ref: str = SubjectRef, identity: Identity = Depends(rt.require_identity)) -> dict[str, Any]:
        out = provider.export(identity.account_id, ref)
        return {"service": rt.name, "ref": ref, "records": out.records,
                "files": [{"name": k, "content_b64": base64.b64encode(v).decode()} for k, v in sorted(out.files.items())]}

    @router.delete("/{ref}", operation_id=f"{rt.name}_erase_subject",
                   summary="Erase everything this service holds about one subject (idempotent)")
    def erase_subject(ref: str = SubjectRef, identity: Identity = Depends(rt.require_identity)) -> dict[str, Any]:
        return {"service": rt.name, "ref": ref, "deleted": provider.erase(identity.account_id, ref)}

    return router
