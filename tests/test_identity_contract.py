"""Every route of every service refuses a request without a valid gateway identity.

The routes are read from each installed service's FastAPI app (found through the ``bio.services``
entry points), so a route added later is covered without touching this file. Health, readiness and
metrics are the only routes open to anyone; the docs and the OpenAPI document are not API routes.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

try:  # FastAPI >= 0.16x includes routers lazily; this yields the effective (prefixed) routes
    from fastapi.routing import _iter_included_route_candidates as _effective_routes
except ImportError:  # older FastAPI: app.routes is already flat
    def _effective_routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
        return iter(routes)
from fastapi.testclient import TestClient

from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity
from bio_shared.services import discover_services
from bio_testing.shared import identity_headers

SECRET = "identity-contract-internal-secret-" + "x" * 32
OPEN_PATHS = {"/healthz", "/readyz", "/metrics"}
# Routes known to miss the identity check on this branch, fixed by the room that owns the service.
# The marks are strict: once the fix is merged the test passes, the XPASS fails, and the mark goes.
KNOWN_OPEN: dict[tuple[str, str], str] = {}  # none since fp-room checked /fingerprint/thresholds

_VAR = Path(tempfile.mkdtemp(prefix="bio-identity-contract-"))
atexit.register(shutil.rmtree, _VAR, True)


def _apps() -> dict:
    apps = {}
    for name, spec in discover_services().items():
        var_dir = _VAR / name
        settings = spec.settings(env="test", var_dir=var_dir, log_json=False, database_url="", redis_url="",
                                 jobs_mode="inprocess", internal_secret=SECRET)
        apps[name] = spec.create_app(settings)
    return apps


APPS = _apps()


def _concrete(route: APIRoute) -> str:
    path = route.path_format
    for name, convertor in route.param_convertors.items():
        value = "1" if type(convertor).__name__ in ("IntegerConvertor", "FloatConvertor") else "a1b2c3"
        path = path.replace("{" + name + "}", value)
    return path


def _cases() -> list:
    cases = []
    for service, app in APPS.items():
        for route in _effective_routes(app.routes):
            if not isinstance(route, APIRoute) or route.path in OPEN_PATHS:
                continue
            for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
                reason = KNOWN_OPEN.get((method, route.path))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                cases.append(pytest.param(service, method, route.path, _concrete(route), marks=marks,
                                          id=f"{method} {route.path}"))
    return cases


def test_every_service_has_routes_to_check():
    assert set(APPS) == {"fingerprint", "face_recognition", "face_verify", "contour_mask"}
    per_service = {s: sum(1 for c in _cases() if c.values[0] == s) for s in APPS}
    assert all(n >= 5 for n in per_service.values()), per_service


@pytest.mark.parametrize(("service", "method", "template", "path"), _cases())
def test_route_refuses_requests_without_a_valid_identity(service, method, template, path):
    client = TestClient(APPS[service], raise_server_exceptions=False)  # no lifespan: nothing may run
    expired = {IDENTITY_HEADER: sign_identity(Identity("acct-x", "admin"), SECRET, ttl_s=-30)}
    forged = identity_headers("another-secret-" + "y" * 40, "acct-x", "admin")
    attempts = {"missing_identity": {}, "invalid_identity": forged}
    for expected_code, headers in attempts.items():
        r = client.request(method, path, headers=headers)
        assert r.status_code == 401, (expected_code, method, template, r.status_code, r.text[:300])
        assert r.json()["error"]["code"] == expected_code, r.text
    r = client.request(method, path, headers=expired)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_identity", r.text
    r = client.request(method, path, headers={IDENTITY_HEADER: "not.a.token"})
    assert r.status_code == 401, r.text


def test_probes_stay_open():
    for app in APPS.values():
        client = TestClient(app)
        assert client.get("/healthz").status_code == 200
