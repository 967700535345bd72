"""API keys of the signed-in account; for admins the accounts list and, where the platform has it,
the audit trail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from bio_gateway.console import forms
from bio_gateway.console.client import ApiError
from bio_gateway.console.render import audit_available, page
from bio_gateway.console.session import PREFIX, ApiDep, ConsoleRoute, flash, redirect

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
ACCOUNTS = "/api/v1/admin/accounts"
PAGE_SIZE = 50
AUDIT_COLUMNS = ("at", "account_id", "action", "method", "status", "outcome", "path")


@router.get("/keys")
async def keys(request: Request, api: ApiDep) -> Response:
    listing = await api.get("/api/v1/auth/api-keys")
    return await page(request, api, "keys.html", keys=listing.get("items", []), created=None)


@router.post("/keys")
async def create_key(request: Request, api: ApiDep) -> Response:
    form = await request.form()
    try:
        created = await api.post("/api/v1/auth/api-keys", json={"name": forms.text(form, "name")})
    except ApiError as exc:
        flash(request, f"No key created: {exc.message}", "error")
        return redirect(f"{PREFIX}/keys")
    listing = await api.get("/api/v1/auth/api-keys")
    # The secret is shown on this response only (never stored by the console, never shown again).
    return await page(request, api, "keys.html", keys=listing.get("items", []), created=created)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, api: ApiDep, key_id: str) -> Response:
    await api.delete(f"/api/v1/auth/api-keys/{key_id}")
    flash(request, "Key revoked.")
    return redirect(f"{PREFIX}/keys")


@router.get("/admin/accounts")
async def accounts(request: Request, api: ApiDep, offset: int = 0) -> Response:
    listing = await api.get(ACCOUNTS, limit=PAGE_SIZE, offset=max(0, offset))
    return await page(request, api, "accounts.html", accounts=listing, offset=max(0, offset), page_size=PAGE_SIZE)


@router.post("/admin/accounts/{account_id}")
async def update_account(request: Request, api: ApiDep, account_id: str) -> Response:
    form = await request.form()
    body: dict[str, Any] = {}
    if forms.text(form, "is_active") in ("true", "false"):
        body["is_active"] = forms.text(form, "is_active") == "true"
    if forms.text(form, "role") in ("admin", "user"):
        body["role"] = forms.text(form, "role")
    try:
        row = await api.patch(f"{ACCOUNTS}/{account_id}", body)
        flash(request, f"{row['email']}: {row['role']}, {'active' if row['is_active'] else 'disabled'}.")
    except ApiError as exc:
        flash(request, f"Not changed: {exc.message}", "error")
    return redirect(f"{PREFIX}/admin/accounts")


@router.post("/admin/accounts/{account_id}/delete")
async def delete_account(request: Request, api: ApiDep, account_id: str) -> Response:
    try:
        await api.delete(f"{ACCOUNTS}/{account_id}")
        flash(request, "Account deleted with all its data.")
    except ApiError as exc:
        flash(request, f"Not deleted: {exc.message}", "error")
    return redirect(f"{PREFIX}/admin/accounts")


@router.get("/admin/audit")
async def audit(request: Request, api: ApiDep, offset: int = 0, action: str = "") -> Response:
    if not await audit_available(request, api):
        raise ApiError(404, "not_found", "this platform has no audit trail")
    listing = await api.get("/api/v1/audit", limit=PAGE_SIZE, offset=max(0, offset), action=action.strip() or None)
    items = listing.get("items", [])
    columns = [c for c in AUDIT_COLUMNS if items and c in items[0]] or (list(items[0]) if items else [])
    emails = {a["id"]: a["email"] for a in (await api.get(ACCOUNTS, limit=500)).get("items", [])}
    return await page(request, api, "audit.html", listing=listing, items=items, columns=columns, emails=emails,
                      offset=max(0, offset), page_size=PAGE_SIZE, action=action)
