"""Helpers for tests that drive the gateway (its own and the end-to-end suites)."""

from __future__ import annotations

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
