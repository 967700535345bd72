"""JWT access tokens (python-jose, HS256) and opaque refresh tokens / API keys.

Access tokens carry ``typ=access`` and the account's token generation ``gen`` (raised when an
account is disabled, so re-enabling it does not bring its old tokens back); nothing else is accepted
as one, and exp, aud, iss, sub and iat must all be present. Refresh tokens are random
strings (never JWTs), stored only as SHA-256, so a refresh token can never pass as an access token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

from jose import ExpiredSignatureError, JWTError, jwt

from bio_gateway.exceptions import InvalidToken, TokenExpired

ALGORITHM = "HS256"
AUDIENCE = "bio-api"
# python-jose checks exp/aud/iss only when present unless told they are required.
_REQUIRED = {f"require_{c}": True for c in ("exp", "aud", "iss", "sub", "iat")}


@dataclass(frozen=True)
class AccessClaims:
    account_id: str
    role: str
    expires_at: int
    generation: int = 0


def create_access_token(account_id: str, role: str, *, secret: str, issuer: str, ttl_s: int,
                        generation: int = 0) -> tuple[str, int]:
    now = int(time.time())
    claims = {"sub": account_id, "role": role, "typ": "access", "iss": issuer, "aud": AUDIENCE,
              "iat": now, "nbf": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex, "gen": generation}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), now + ttl_s


def decode_access_token(token: str, *, secret: str, issuer: str) -> AccessClaims:
    try:
        # algorithms is a closed list: "none" and asymmetric confusions are refused by the library.
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=issuer,
                            options=_REQUIRED)
    except ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except JWTError as exc:
        raise InvalidToken() from exc
    generation = claims.get("gen", 0)
    if claims.get("typ") != "access" or not claims.get("sub") or type(generation) is not int:
        raise InvalidToken()
    return AccessClaims(account_id=str(claims["sub"]), role=str(claims.get("role", "user")),
                        expires_at=int(claims["exp"]), generation=generation)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_refresh_token() -> str:
    return "rt_" + secrets.token_urlsafe(32)


API_KEY_PREFIX = "bio_"


def new_api_key() -> tuple[str, str]:
    """Returns (full key shown once, lookup prefix)."""
    prefix = secrets.token_hex(6)
    return f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}", prefix


def api_key_prefix(key: str) -> str | None:
    if not key.startswith(API_KEY_PREFIX):
        return None
    parts = key[len(API_KEY_PREFIX):].split("_", 1)
    if len(parts) != 2 or len(parts[0]) != 12:
        return None
    return parts[0]
