"""Dependencies of the fingerprint routers, by type, and the documented error responses of a route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request, UploadFile
from sqlalchemy.orm import Session

from bio_fingerprint.exceptions import with_file
from bio_fingerprint.runtime import FingerprintState, state_of
from bio_shared.errors import BioError
from bio_shared.identity import Identity
from bio_shared.runtime import ServiceRuntime
from bio_shared.schemas import ErrorResponse
from bio_shared.uploads import read_upload

MAX_OFFSET = 10**9


def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def require_identity(request: Request) -> Identity:
    """The gateway identity; every router of this service requires it (``dependencies=AUTH``)."""
    return get_runtime(request).require_identity(request)


IdentityDep = Annotated[Identity, Depends(require_identity)]
AUTH = [Depends(require_identity)]


def get_session(rt: RuntimeDep) -> Iterator[Session]:
    with rt.sessions() as s:
        yield s


SessionDep = Annotated[Session, Depends(get_session)]


def get_state(rt: RuntimeDep) -> FingerprintState:
    return state_of(rt)


StateDep = Annotated[FingerprintState, Depends(get_state)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]

# Errors of the shared image decoder, which every upload route can return.
IMAGE_ERRORS = ((413, "payload_too_large"), (413, "too_many_pixels"), (415, "not_an_image"),
                (415, "unsupported_format"), (422, "empty_file"), (422, "corrupt_image"), (422, "image_too_small"))


def error_responses(*errors: type[BioError] | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: per status the error model and the codes it can carry."""
    codes: dict[int, list[str]] = {}
    for e in errors:
        status, code = e if isinstance(e, tuple) else (e.status_code, e.code)
        if code not in codes.setdefault(status, []):
            codes[status].append(code)
    return {s: {"model": ErrorResponse, "description": "error codes: " + ", ".join(c)} for s, c in sorted(codes.items())}


async def read_files(rt: ServiceRuntime, files: list[UploadFile]) -> list[tuple[bytes, str | None]]:
    out = []
    for i, f in enumerate(files):
        try:
            out.append((await read_upload(f, rt.settings.max_upload_bytes), f.filename))
        except BioError as exc:
            raise with_file(exc, f.filename, i) from exc
    return out
