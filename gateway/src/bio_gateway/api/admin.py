"""Account administration (admin role)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from bio_gateway.api.deps import AUTH_ERRORS, AccountsDep, AdminDep, admin_principal
from bio_gateway.exceptions import AccountNotFound, AdminRequired, PurgeIncomplete, SelfLockout
from bio_gateway.purge import purge_account
from bio_gateway.schemas import AccountList, AccountOut, AccountPatch
from bio_shared.web.errors import error_responses

router = APIRouter(prefix="/api/v1/admin/accounts", tags=["gateway: admin"],
                   dependencies=[Depends(admin_principal)], responses=error_responses(*AUTH_ERRORS, AdminRequired))

_ONE = error_responses(*AUTH_ERRORS, AdminRequired, AccountNotFound, SelfLockout)


@router.get("", response_model=AccountList, summary="List accounts", operation_id="gateway_list_accounts")
def list_accounts(svc: AccountsDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  offset: Annotated[int, Query(ge=0, le=10**9)] = 0) -> AccountList:
    rows, total = svc.list(limit, offset)
    return AccountList(items=[AccountOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.patch("/{account_id}", response_model=AccountOut, operation_id="gateway_update_account", responses=_ONE,
              summary="Enable or disable an account, or change its role (disabling revokes its refresh tokens, "
                      "API keys and access tokens; enabling it again restores none of them)")
def patch_account(account_id: str, body: AccountPatch, admin: AdminDep, svc: AccountsDep) -> AccountOut:
    return AccountOut.model_validate(svc.update(account_id, is_active=body.is_active, role=body.role,
                                                actor=admin.account_id))


@router.delete("/{account_id}", status_code=204, response_class=Response, operation_id="gateway_delete_account",
               responses=error_responses(*AUTH_ERRORS, AdminRequired, AccountNotFound, SelfLockout, PurgeIncomplete),
               summary="Delete an account and all its data in every service (503 if a service is down: "
                       "the account stays disabled and the request can be repeated)")
async def delete_account(account_id: str, request: Request, admin: AdminDep, svc: AccountsDep) -> Response:
    await run_in_threadpool(svc.update, account_id, is_active=False, role=None, actor=admin.account_id)
    await purge_account(list(request.app.state.upstreams.values()), account_id, admin.account_id,
                        request.app.state.settings)
    await run_in_threadpool(svc.delete, account_id, actor=admin.account_id)
    return Response(status_code=204)
