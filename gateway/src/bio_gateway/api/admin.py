from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from bio_gateway.api.deps import accounts, admin_principal
from bio_gateway.purge import purge_account
from bio_gateway.schemas import AccountList, AccountOut, AccountPatch
from bio_gateway.service import Accounts, Principal
from bio_shared.app import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/admin/accounts", tags=["admin"], responses=ERROR_RESPONSES)


@router.get("", response_model=AccountList, summary="List accounts")
def list_accounts(limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                  _: Principal = Depends(admin_principal), svc: Accounts = Depends(accounts)) -> AccountList:
    rows, total = svc.list(limit, offset)
    return AccountList(items=[AccountOut.model_validate(r) for r in rows], total=total)


@router.patch("/{account_id}", response_model=AccountOut,
              summary="Enable or disable an account, or change its role (disabling revokes its refresh tokens)")
def patch_account(account_id: str, body: AccountPatch, admin: Principal = Depends(admin_principal),
                  svc: Accounts = Depends(accounts)) -> AccountOut:
    return AccountOut.model_validate(svc.update(account_id, is_active=body.is_active, role=body.role,
                                                actor=admin.account_id))


@router.delete("/{account_id}", status_code=204, response_class=Response,
               summary="Delete an account and all its data in every service (503 if a service is down: "
                       "the account stays disabled and the request can be repeated)")
async def delete_account(account_id: str, request: Request, admin: Principal = Depends(admin_principal),
                         svc: Accounts = Depends(accounts)) -> Response:
    await run_in_threadpool(svc.update, account_id, is_active=False, role=None, actor=admin.account_id)
    await purge_account(list(request.app.state.upstreams.values()), account_id, admin.account_id,
                        request.app.state.settings)
    await run_in_threadpool(svc.delete, account_id, actor=admin.account_id)
    return Response(status_code=204)
