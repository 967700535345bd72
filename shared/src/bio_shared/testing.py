"""Helpers for tests of services: what the gateway would send."""

from __future__ import annotations

from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity


def identity_headers(secret: str, account_id: str = "acct-a", role: str = "user", ttl_s: int = 60) -> dict[str, str]:
    return {IDENTITY_HEADER: sign_identity(Identity(account_id, role), secret, ttl_s)}
