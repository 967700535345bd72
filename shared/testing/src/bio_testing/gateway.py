"""Helpers for tests that drive the gateway (its own and the end-to-end suites)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PASSWORD = "correct horse battery"


def register(client: Any, email: str, password: str = PASSWORD) -> dict:
    r = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return r.json()


def login(client: Any, email: str, password: str = PASSWORD) -> dict:
    r = client.post("/api/v1/auth/login", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def user(client: Any, email: str) -> dict[str, str]:
    register(client, email)
    return bearer(login(client, email))


def make_admin(client: Any, email: str = "admin@example.org") -> dict[str, str]:
    accounts = client.app.state.accounts
    accounts.ensure_admin(email, PASSWORD)
    return bearer(login(client, email))


# Generous limits: fuzzing and hostile-input suites send thousands of requests from one account.
UNLIMITED = {"rate_limit_api": "1000000/minute", "rate_limit_login": "1000000/minute",
             "rate_limit_login_account": "1000000/minute", "rate_limit_register": "1000000/minute"}


def embedded_gateway(var_dir: Path, **overrides: Any) -> Any:
    """The embedded platform (every installed service in process, SQLite and blobs under var_dir,
    in-process jobs), migrated; its lifespan is not started."""
    from bio_gateway.app import create_app
    from bio_gateway.settings import GatewaySettings
    from bio_shared.db import migrate
    from bio_shared.services import discover_services

    service = {"env": "test", "var_dir": var_dir, "log_json": False, "database_url": "", "redis_url": "",
               "jobs_mode": "inprocess"}
    settings = GatewaySettings(env="test", var_dir=var_dir, log_json=False, database_url="", redis_url="",
                               services={}, **overrides)
    migrate("bio_gateway", settings.database_url)
    for spec in discover_services().values():
        migrate(spec.package, spec.settings(**service).database_url)
    return create_app(settings, service_overrides=service)


def answer_500_on_crash(app: Any) -> Any:
    """What a server (uvicorn) does with an exception that escapes the app: log it, answer 500. Test
    clients re-raise instead; wrapped in this, a crash is a 500 response the suites can count."""

    async def wrapped(scope: dict, receive: Any, send: Any) -> None:
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, tracked)
        except Exception:
            if scope["type"] != "http":
                raise
            if not started:
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"unhandled exception"})

    wrapped.state = app.state  # type: ignore[attr-defined]
    return wrapped
