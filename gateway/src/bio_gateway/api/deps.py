"""Dependencies of the gateway's own endpoints, by type (the proxied service calls authenticate in
proxy.py with the same Accounts use cases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from bio_gateway.audit.middleware import note_principal
from bio_gateway.exceptions import (
    AccountDisabled,
    AdminRequired,
    InvalidApiKey,
    InvalidToken,
    NotAuthenticated,
    PasswordLoginRequired,
    TokenExpired,
    TokenRevoked,
)
from bio_gateway.ratelimit import RateLimiter
from bio_gateway.service import Accounts, Principal
from bio_gateway.settings import GatewaySettings

# What an authenticated operation can answer when the credentials do not hold.
AUTH_ERRORS = (NotAuthenticated, InvalidToken, TokenExpired, TokenRevoked, InvalidApiKey, AccountDisabled)

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter


AccountsDep = Annotated[Accounts, Depends(accounts)]
SettingsDep = Annotated[GatewaySettings, Depends(settings)]
LimiterDep = Annotated[RateLimiter, Depends(limiter)]


async def current_principal(
    request: Request,
    svc: AccountsDep,
    cfg: SettingsDep,
    rl: LimiterDep,
    token: Annotated[str | None, Depends(oauth2)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    if token:
        principal = await run_in_threadpool(svc.principal_from_token, token)
    elif api_key:
        principal = await run_in_threadpool(svc.principal_from_api_key, api_key)
    else:
        raise NotAuthenticated()
    note_principal(request.scope, principal, dict(request.scope.get("headers", ())))  # who acted, for the audit
    await rl.hit("api", principal.account_id, cfg.rate_limit_api)  # the same budget as the service calls
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def admin_principal(principal: PrincipalDep) -> Principal:
    if principal.role != "admin":
        raise AdminRequired()
    return principal


AdminDep = Annotated[Principal, Depends(admin_principal)]


def password_login(principal: PrincipalDep) -> Principal:
    """A caller who logged in with a password (a bearer token), not one holding only an API key."""
    if principal.via != "jwt":
        raise PasswordLoginRequired()
    return principal


PasswordLoginDep = Annotated[Principal, Depends(password_login)]
