from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from starlette.concurrency import run_in_threadpool

from bio_gateway.api.deps import accounts, current_principal, limiter, settings
from bio_gateway.proxy import client_ip
from bio_gateway.ratelimit import RateLimiter
from bio_gateway.schemas import AccountOut, RefreshIn, RegisterIn, TokenOut
from bio_gateway.service import Accounts, Principal
from bio_gateway.settings import GatewaySettings
from bio_shared.app import ERROR_RESPONSES
from bio_shared.errors import Forbidden

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], responses=ERROR_RESPONSES)


def _pair(pair) -> TokenOut:
    return TokenOut(access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token,
                    refresh_expires_in=pair.refresh_expires_in)


@router.post("/register", response_model=AccountOut, status_code=201, summary="Create a user account")
async def register(body: RegisterIn, request: Request, svc: Accounts = Depends(accounts),
                   cfg: GatewaySettings = Depends(settings), rl: RateLimiter = Depends(limiter)) -> AccountOut:
    await rl.hit("register", client_ip(request.scope, cfg.trust_forwarded_for), cfg.rate_limit_register)
    if not cfg.allow_registration:
        raise Forbidden("registration is disabled on this platform; ask an administrator", code="registration_disabled")
    return AccountOut.model_validate(await run_in_threadpool(svc.register, body.email, body.password))


@router.post("/login", response_model=TokenOut,
             summary="Log in with e-mail (as username) and password (OAuth2 password form)")
async def login(request: Request, form: OAuth2PasswordRequestForm = Depends(), svc: Accounts = Depends(accounts),
                cfg: GatewaySettings = Depends(settings), rl: RateLimiter = Depends(limiter)) -> TokenOut:
    await rl.hit("login", client_ip(request.scope, cfg.trust_forwarded_for), cfg.rate_limit_login)
    return _pair(await run_in_threadpool(svc.login, form.username, form.password))


@router.post("/refresh", response_model=TokenOut,
             summary="Exchange a refresh token for a new pair (the old one is spent; reuse revokes the login)")
async def refresh(body: RefreshIn, request: Request, svc: Accounts = Depends(accounts),
                  cfg: GatewaySettings = Depends(settings), rl: RateLimiter = Depends(limiter)) -> TokenOut:
    await rl.hit("login", client_ip(request.scope, cfg.trust_forwarded_for), cfg.rate_limit_login)
    return _pair(await run_in_threadpool(svc.refresh, body.refresh_token))


@router.post("/logout", status_code=204, response_class=Response,
             summary="Revoke the refresh token and every token rotated from the same login")
def logout(body: RefreshIn, svc: Accounts = Depends(accounts)) -> Response:
    svc.logout(body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=AccountOut, summary="The calling account")
def me(principal: Principal = Depends(current_principal), svc: Accounts = Depends(accounts)) -> AccountOut:
    return AccountOut.model_validate(svc.get(principal.account_id))
