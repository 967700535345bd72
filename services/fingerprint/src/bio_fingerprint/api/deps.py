"""Dependencies of the fingerprint routers, by type (and the shared error_responses / PageDep re-exported)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, UploadFile

from bio_fingerprint.exceptions import with_file
from bio_fingerprint.runtime import FingerprintState, state_of
from bio_shared.errors import BioError
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import read_upload
from bio_shared.web.deps import IdentityDep, SessionDep, get_identity, get_runtime
from bio_shared.web.errors import error_responses
from bio_shared.web.pagination import PageDep

RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
require_identity = get_identity  # the gateway identity; every router of this service requires it (AUTH)
AUTH = [Depends(get_identity)]


def get_state(rt: RuntimeDep) -> FingerprintState:
    return state_of(rt)


StateDep = Annotated[FingerprintState, Depends(get_state)]
async def read_files(rt: ServiceRuntime, files: list[UploadFile]) -> list[tuple[bytes, str | None]]:
    out = []
    for i, f in enumerate(files):
        try:
            out.append((await read_upload(f, rt.settings.max_upload_bytes), f.filename))
        except BioError as exc:
            raise with_file(exc, f.filename, i) from exc
    return out


__all__ = ["AUTH", "IdentityDep", "PageDep", "RuntimeDep", "SessionDep", "StateDep",
           "error_responses", "read_files", "require_identity"]
