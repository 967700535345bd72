"""FastAPI dependencies every service's ``api/deps.py`` builds on.

A service's routers are module-level; the runtime is found on the app (``app.state.runtime``, set by
``create_service_app``), so no router is a closure over it::

    # bio_<service>/api/deps.py
    FaceRuntime = ServiceRuntime[FaceState, FaceSettings]
    RuntimeDep = Annotated[FaceRuntime, Depends(get_runtime)]

    # bio_<service>/api/people.py
    router = APIRouter(prefix=..., tags=["face_recognition: people"], dependencies=[Depends(get_identity)])

    @router.get("/{person_id}")
    def get_person(person_id: str, rt: RuntimeDep, identity: IdentityDep, session: SessionDep) -> PersonOut: ...

FastAPI runs a dependency once per request, so the router-level identity check and ``IdentityDep`` in a
route verify the token once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from bio_shared.db import session_scope
from bio_shared.identity import Identity
from bio_shared.runtime import ServiceRuntime


def get_runtime(request: Request) -> ServiceRuntime[Any]:
    runtime: ServiceRuntime[Any] = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime[Any], Depends(get_runtime)]


def get_identity(request: Request, rt: RuntimeDep) -> Identity:
    """The caller, from the identity the gateway signed (401 without a valid one)."""
    return rt.require_identity(request)


IdentityDep = Annotated[Identity, Depends(get_identity)]


def get_session(rt: RuntimeDep) -> Iterator[Session]:
    """One database session per request: committed when the route returns, rolled back on an error."""
    with session_scope(rt.sessions) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
