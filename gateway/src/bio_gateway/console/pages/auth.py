"""Login and logout through the public /api/v1/auth endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from bio_gateway.console import forms
from bio_gateway.console.client import ApiError
from bio_gateway.console.render import page
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute, flash, redirect

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _safe_next(value: str) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value and "@" not in value:
        return value
    return f"{PREFIX}/events"


@router.get("")
async def home(api: ApiDep) -> Response:
    return redirect(f"{PREFIX}/events" if api.tokens else f"{PREFIX}/login")


@router.get("/login")
async def login_form(request: Request, api: ApiDep, next: str = "") -> Response:
    api.tokens = None  # the login page never shows an account, whatever the cookies say
    return await page(request, api, "login.html", next=_safe_next(next), email="")


@router.post("/login")
async def login(request: Request, api: ApiDep) -> Response:
    form = await request.form()
    email, password = forms.text(form, "email"), form.get("password")
    target = _safe_next(forms.text(form, "next"))
    try:
        await api.login(email, password if isinstance(password, str) else "")
    except ApiError as exc:
        api.tokens = None
        message = "Wrong e-mail or password." if exc.status in (401, 422) else exc.message
        return await page(request, api, "login.html", status=exc.status, next=target, email=email, error=message)
    return redirect(target)


@router.post("/logout")
async def logout(request: Request, api: ApiDep) -> Response:
    if api.tokens is not None:
        await api.logout()
    flash(request, "You are logged out.")
    return redirect(f"{PREFIX}/login")
