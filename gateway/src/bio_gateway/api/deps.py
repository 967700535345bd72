"""Dependencies of the gateway's own endpoints (the proxied service calls authenticate in proxy.py)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.concurrency import run_in_threadpool

from bio_gateway.audit.middleware import note_principal
from bio_gateway.ratelimit import RateLimiter
from bio_gateway.service import Accounts, Principal
from bio_gateway.settings import GatewaySettings
from bio_shared.errors import Forbidden, Unauthorized

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter


async def current_principal(
    request: Request,
    token: str | None = Depends(oauth2),
    api_key: str | None = Depends(api_key_header),
) -> Principal:
    svc: Accounts = request.app.state.accounts
    principal: Principal | None = None
    if token:
        principal = await run_in_threadpool(svc.principal_from_token, token)
    elif api_key:
        principal = await run_in_threadpool(svc.principal_from_api_key, api_key)
    if principal is not None:
        note_principal(request.scope, principal, dict(request.scope.get("headers", ())))
        return principal
    raise Unauthorized("send a Bearer access token or an X-API-Key header", code="not_authenticated")


def admin_principal(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.role != "admin":
        raise Forbidden("admin role required", code="admin_required")
    return principal
