from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bio_gateway.app import create_app
from bio_gateway.security.passwords import set_rounds_for_tests
from bio_gateway.settings import GatewaySettings
from bio_shared.db import migrate
from bio_shared.services import discover_services
from bio_testing.gateway import PASSWORD  # noqa: F401

set_rounds_for_tests(4)  # bcrypt cost 4 keeps the suite fast; production uses 12

def make_settings(var_dir: Path, **overrides: Any) -> GatewaySettings:
    return GatewaySettings(env="test", var_dir=var_dir, log_json=False, **overrides)


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Builds an embedded gateway (all installed services in process) on a throw-away SQLite file."""
    clients: list[TestClient] = []

    def build(**overrides: Any) -> TestClient:
        var_dir = tmp_path / f"var{len(clients)}"
        settings = make_settings(var_dir, **overrides)
        migrate("bio_gateway", settings.database_url)
        common = {"env": "test", "var_dir": var_dir, "log_json": False}
        for spec in discover_services().values():
            migrate(spec.package, spec.settings(**common).database_url)
        client = TestClient(create_app(settings, service_overrides=common))
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def gw(gateway_factory: Callable[..., TestClient]) -> TestClient:
    return gateway_factory()
