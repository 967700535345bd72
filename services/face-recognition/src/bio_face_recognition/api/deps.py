"""Dependencies of the face recognition routes, by type: ``RuntimeDep``, ``IdentityDep``, ``OwnerDep``,
and the shared ``PageDep``; ``require_identity`` guards every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, UploadFile

from bio_face_recognition.exceptions import TooManyImages
from bio_face_recognition.runtime import PREFIX, face_state
from bio_face_recognition.service.common import Upload
from bio_shared.errors import BioError
from bio_shared.identity import Identity
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import read_upload
from bio_shared.web.pagination import PageDep as PageDep

EVENTS = f"{PREFIX}/events"


def _runtime(request: Request) -> ServiceRuntime:
    rt: ServiceRuntime = request.app.state.runtime
    return rt


def _identity(request: Request) -> Identity:
    return _runtime(request).require_identity(request)


def _owner(identity: Annotated[Identity, Depends(_identity)]) -> str:
    return identity.account_id


RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]
IdentityDep = Annotated[Identity, Depends(_identity)]
OwnerDep = Annotated[str, Depends(_owner)]
require_identity = Depends(_identity)




async def read_uploads(rt: ServiceRuntime, files: list[UploadFile]) -> list[Upload]:
    """Every file of a multi-file request, each within the byte limit; an error names the file and index."""
    limit = face_state(rt).settings.max_images_per_request
    if len(files) > limit:
        raise TooManyImages(f"at most {limit} images per request", details={"limit": limit})
    out = []
    for i, f in enumerate(files):
        try:
            out.append(Upload(await read_upload(f, rt.settings.max_upload_bytes), f.filename))
        except BioError as exc:
            exc.details = (exc.details if isinstance(exc.details, dict) else {}) | {"file": f.filename, "index": i}
            raise
    return out
