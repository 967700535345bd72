"""The caller identity the gateway forwards to services.

The gateway authenticates the user (JWT or API key) and forwards a short-lived token signed with
the internal secret in ``X-Bio-Identity``. Services verify it and never see user credentials; a
request that reaches a service without a valid one is refused.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from jose import JWTError, jwt

from bio_shared.errors import Forbidden, Unauthorized

IDENTITY_HEADER = "X-Bio-Identity"
_AUDIENCE = "bio-services"
_ISSUER = "bio-gateway"
_ALGORITHM = "HS256"
# python-jose checks exp/aud/iss only when present unless told they are required.
_REQUIRED = {f"require_{c}": True for c in ("exp", "aud", "iss", "sub", "iat")}


@dataclass(frozen=True)
class Identity:
    account_id: str
    role: str
    request_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def sign_identity(identity: Identity, secret: str, ttl_s: int = 60) -> str:
    now = int(time.time())
    claims = {
        "sub": identity.account_id,
        "role": identity.role,
        "rid": identity.request_id,
        "aud": _AUDIENCE,
        "iss": _ISSUER,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    token: str = jwt.encode(claims, secret, algorithm=_ALGORITHM)  # python-jose is untyped
    return token


def verify_identity(token: str, secret: str) -> Identity:
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], audience=_AUDIENCE, issuer=_ISSUER,
                            options=_REQUIRED)
    except JWTError as exc:
        raise Unauthorized("invalid gateway identity", code="invalid_identity") from exc
    sub, role = claims.get("sub"), claims.get("role")
    if not sub or role not in ("admin", "user"):
        raise Unauthorized("invalid gateway identity", code="invalid_identity")
    return Identity(account_id=str(sub), role=str(role), request_id=claims.get("rid"))


def identity_dependency(get_secret: Callable[[], str]) -> Callable[[Request], Identity]:
    """FastAPI dependency factory: ``Depends(identity_dependency(lambda: settings.internal_secret))``."""

    def require_identity(request: Request) -> Identity:
        token = request.headers.get(IDENTITY_HEADER)
        if not token:
            raise Unauthorized("requests must come through the gateway", code="missing_identity")
        identity = verify_identity(token, get_secret())
        request.state.identity = identity
        return identity

    return require_identity


def require_admin(identity: Identity) -> Identity:
    if not identity.is_admin:
        raise Forbidden("admin role required")
    return identity
