"""bio_shared.web.deps: module-level routers get the runtime, the identity and a session per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bio_shared.runtime import ServiceRuntime
from bio_shared.web.deps import IdentityDep, RuntimeDep, SessionDep, get_identity
from bio_testing.shell import PREFIX, ShellJob, shell_app

router = APIRouter(prefix=f"{PREFIX}/whoami", dependencies=[Depends(get_identity)])


@router.get("")
def whoami(rt: RuntimeDep, identity: IdentityDep, session: SessionDep) -> dict[str, Any]:
    jobs = session.scalar(select(func.count()).select_from(ShellJob).where(ShellJob.owner_id == identity.account_id))
    return {"service": rt.name, "account": identity.account_id, "jobs": jobs}


@router.get("/open-by-mistake")
def no_identity_parameter() -> dict[str, str]:
    return {"reached": "yes"}  # the router-level dependency still guards it


def test_module_level_router_with_shared_dependencies(make_rt: Callable[..., ServiceRuntime],
                                                      alice: dict[str, str]) -> None:
    rt = make_rt()
    app = shell_app(rt)
    app.include_router(router)
    with TestClient(app) as client:
        body = client.get(f"{PREFIX}/whoami", headers=alice).json()
        assert body == {"service": "shared_apptest", "account": "acct-alice", "jobs": 0}
        for path in (f"{PREFIX}/whoami", f"{PREFIX}/whoami/open-by-mistake"):
            resp = client.get(path)
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "missing_identity"
        assert client.get(f"{PREFIX}/whoami", headers={"X-Bio-Identity": "forged"}).status_code == 401
