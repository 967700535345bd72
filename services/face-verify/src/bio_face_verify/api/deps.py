"""The dependencies of the face-verify routes, by type: the runtime, the caller's identity, a database
session and the two uploaded photos."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, File, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from bio_face_verify.runtime import FaceVerifyRuntime
from bio_face_verify.service.verification import IMAGES, Upload, name_file
from bio_shared.errors import BioError
from bio_shared.uploads import read_upload
from bio_shared.web.deps import IdentityDep as IdentityDep
from bio_shared.web.deps import SessionDep as SessionDep
from bio_shared.web.deps import get_identity, get_runtime

require_identity = get_identity

RuntimeDep = Annotated[FaceVerifyRuntime, Depends(get_runtime)]


class FaceVerifyPhotoPair(BaseModel):
    """The multipart body of a verification: two photos."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    image_a: UploadFile = Field(description="first photo (JPEG, PNG, WebP, TIFF, BMP, GIF)")
    image_b: UploadFile = Field(description="second photo")


def photo_pair(body: Annotated[FaceVerifyPhotoPair, File()]) -> dict[str, UploadFile]:
    return {"image_a": body.image_a, "image_b": body.image_b}


async def read_pair(rt: FaceVerifyRuntime, files: dict[str, UploadFile]) -> dict[str, Upload]:
    """Both uploads read with the byte limit (after the request is validated); an error names the field,
    the file and its index."""
    uploads = {}
    for label in IMAGES:
        upload = files[label]
        try:
            uploads[label] = (await read_upload(upload, rt.settings.max_upload_bytes), upload.filename)
        except BioError as exc:
            raise name_file(exc, label, upload.filename) from None
    return uploads


PhotoPairDep = Annotated[dict[str, UploadFile], Depends(photo_pair)]
