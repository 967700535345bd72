from __future__ import annotations

from fastapi import APIRouter, Depends

from bio_gateway.api.deps import accounts, current_principal
from bio_gateway.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyList, ApiKeyOut
from bio_gateway.service import Accounts, Principal
from bio_shared.app import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/auth/api-keys", tags=["api keys"], responses=ERROR_RESPONSES)


@router.post("", response_model=ApiKeyCreated, status_code=201, summary="Create an API key (shown once)")
def create_key(body: ApiKeyIn, principal: Principal = Depends(current_principal),
               svc: Accounts = Depends(accounts)) -> ApiKeyCreated:
    row, key = svc.create_api_key(principal.account_id, body.name)
    return ApiKeyCreated(key=key, **ApiKeyOut.model_validate(row).model_dump())


@router.get("", response_model=ApiKeyList, summary="List the caller's API keys (never the secrets)")
def list_keys(principal: Principal = Depends(current_principal), svc: Accounts = Depends(accounts)) -> ApiKeyList:
    return ApiKeyList(items=[ApiKeyOut.model_validate(k) for k in svc.list_api_keys(principal.account_id)])


@router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke an API key")
def revoke_key(key_id: str, principal: Principal = Depends(current_principal),
               svc: Accounts = Depends(accounts)) -> ApiKeyOut:
    return ApiKeyOut.model_validate(svc.revoke_api_key(principal.account_id, key_id))
