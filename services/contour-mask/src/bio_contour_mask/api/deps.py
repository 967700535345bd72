"""The dependencies of the contour-mask routes, by type: the runtime, the caller's identity, a database
session and the parsed contour request."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from bio_contour_mask.api.request import ContourRequest, read_contour_request
from bio_contour_mask.runtime import ContourRuntime
from bio_shared.web.deps import IdentityDep as IdentityDep
from bio_shared.web.deps import SessionDep as SessionDep
from bio_shared.web.deps import get_identity, get_runtime

require_identity = get_identity

async def contour_request(request: Request) -> ContourRequest:
    return await read_contour_request(request, get_runtime(request).settings.max_upload_bytes)


RuntimeDep = Annotated[ContourRuntime, Depends(get_runtime)]
ContourRequestDep = Annotated[ContourRequest, Depends(contour_request)]
__all__: list[Any] = ["RuntimeDep", "IdentityDep", "SessionDep", "ContourRequestDep", "require_identity"]
