"""The dependencies of the contour-mask routes, by type: the runtime, the caller's identity, a database
session and the parsed contour request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from bio_contour_mask.api.request import ContourRequest, read_contour_request
from bio_contour_mask.runtime import ContourRuntime
from bio_shared.identity import Identity


def get_runtime(request: Request) -> ContourRuntime:
    rt: ContourRuntime = request.app.state.runtime
    return rt


def require_identity(request: Request) -> Identity:
    return get_runtime(request).require_identity(request)


def get_session(request: Request) -> Iterator[Session]:
    with get_runtime(request).sessions() as session:
        yield session


async def contour_request(request: Request) -> ContourRequest:
    return await read_contour_request(request, get_runtime(request).settings.max_upload_bytes)


RuntimeDep = Annotated[ContourRuntime, Depends(get_runtime)]
IdentityDep = Annotated[Identity, Depends(require_identity)]
SessionDep = Annotated[Session, Depends(get_session)]
ContourRequestDep = Annotated[ContourRequest, Depends(contour_request)]
__all__: list[Any] = ["RuntimeDep", "IdentityDep", "SessionDep", "ContourRequestDep", "require_identity"]
