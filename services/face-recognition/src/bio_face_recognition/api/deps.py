"""Dependencies of the face recognition routes, by type: ``RuntimeDep``, ``IdentityDep``, ``OwnerDep``,
and the shared ``PageDep``; ``require_identity`` guards every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, UploadFile

from bio_face_recognition.exceptions import TooManyImages
from bio_face_recognition.runtime import PREFIX, face_state
from bio_face_recognition.service.common import Upload
from bio_shared.errors import BioError
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import read_upload
from bio_shared.web.deps import IdentityDep as IdentityDep
from bio_shared.web.deps import get_identity, get_runtime
from bio_shared.web.pagination import PageDep as PageDep

EVENTS = f"{PREFIX}/events"


def _owner(identity: IdentityDep) -> str:
    return identity.account_id


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]
OwnerDep = Annotated[str, Depends(_owner)]
require_identity = Depends(get_identity)




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
