"""Registration, login, token rotation and the calling account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from starlette.concurrency import run_in_threadpool

from bio_gateway.api.deps import AUTH_ERRORS, AccountsDep, LimiterDep, PrincipalDep, SettingsDep
from bio_gateway.exceptions import (
    AccountDisabled,
    BadCredentials,
    EmailTaken,
    InvalidRefreshToken,
    LoginDisabled,
    PasswordTooLong,
    RefreshTokenExpired,
    RefreshTokenReused,
    RegistrationDisabled,
    WeakPassword,
)
from bio_gateway.proxy import client_ip
from bio_gateway.schemas import AccountOut, RefreshIn, RegisterIn, TokenOut
from bio_gateway.security.tokens import sha256_hex
from bio_gateway.service import normalise_email
from bio_shared.web.errors import error_responses

router = APIRouter(prefix="/api/v1/auth", tags=["gateway: auth"])

_REFRESH_ERRORS = error_responses(InvalidRefreshToken, RefreshTokenReused, RefreshTokenExpired, AccountDisabled)


@router.post("/register", response_model=AccountOut, status_code=201, summary="Create a user account",
             operation_id="gateway_register_account",
             responses=error_responses(RegistrationDisabled, EmailTaken, WeakPassword, PasswordTooLong))
async def register(body: RegisterIn, request: Request, svc: AccountsDep, cfg: SettingsDep,
                   rl: LimiterDep) -> AccountOut:
    await rl.hit("register", client_ip(request.scope, cfg.trust_forwarded_for), cfg.rate_limit_register)
    if not cfg.allow_registration:
        raise RegistrationDisabled()
    return AccountOut.model_validate(await run_in_threadpool(svc.register, body.email, body.password))


@router.post("/login", response_model=TokenOut, operation_id="gateway_login",
             summary="Log in with e-mail (as username) and password (OAuth2 password form)",
             responses=error_responses(BadCredentials, LoginDisabled))
async def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], svc: AccountsDep,
                cfg: SettingsDep, rl: LimiterDep) -> TokenOut:
    await rl.hit("login", client_ip(request.scope, cfg.trust_forwarded_for), cfg.rate_limit_login)
    # per account as well: many IPs guessing one account's password share one budget
    await rl.hit("login_account", sha256_hex(normalise_email(form.username)), cfg.rate_limit_login_account)
    return TokenOut.model_validate(await run_in_threadpool(svc.login, form.username, form.password))


@router.post("/refresh", response_model=TokenOut, operation_id="gateway_refresh_tokens",
             summary="Exchange a refresh token for a new pair (the old one is spent; reuse revokes the login)",
             responses=_REFRESH_ERRORS)
async def refresh(body: RefreshIn, request: Request, svc: AccountsDep, cfg: SettingsDep,
                  rl: LimiterDep) -> TokenOut:
    await rl.hit("login", client_ip(request.scope, cfg.trust_forwarded_for), cfg.rate_limit_login)
    return TokenOut.model_validate(await run_in_threadpool(svc.refresh, body.refresh_token))


@router.post("/logout", status_code=204, response_class=Response, operation_id="gateway_logout",
             summary="Revoke the refresh token and every token rotated from the same login")
async def logout(body: RefreshIn, request: Request, svc: AccountsDep, cfg: SettingsDep, rl: LimiterDep) -> Response:
    await rl.hit("login", client_ip(request.scope, cfg.trust_forwarded_for), cfg.rate_limit_login)
    await run_in_threadpool(svc.logout, body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=AccountOut, summary="The calling account", operation_id="gateway_get_me",
            responses=error_responses(*AUTH_ERRORS))
def me(principal: PrincipalDep, svc: AccountsDep) -> AccountOut:
    return AccountOut.model_validate(svc.get(principal.account_id))
