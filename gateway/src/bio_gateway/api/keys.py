"""API keys of the calling account."""

from __future__ import annotations

from fastapi import APIRouter

from bio_gateway.api.deps import AUTH_ERRORS, AccountsDep, PasswordLoginDep, PrincipalDep
from bio_gateway.exceptions import ApiKeyNotFound, PasswordLoginRequired, TooManyApiKeys
from bio_gateway.schemas import ApiKeyCreated, ApiKeyIn, ApiKeyList, ApiKeyOut
from bio_shared.web.errors import error_responses

router = APIRouter(prefix="/api/v1/auth/api-keys", tags=["gateway: api keys"],
                   responses=error_responses(*AUTH_ERRORS))


@router.post("", response_model=ApiKeyCreated, status_code=201, operation_id="gateway_create_api_key",
             summary="Create an API key (shown once; needs a password login, not another API key)",
             responses=error_responses(*AUTH_ERRORS, PasswordLoginRequired, TooManyApiKeys))
def create_key(body: ApiKeyIn, principal: PasswordLoginDep, svc: AccountsDep) -> ApiKeyCreated:
    row, key = svc.create_api_key(principal.account_id, body.name)
    return ApiKeyCreated.model_validate({**ApiKeyOut.model_validate(row).model_dump(), "key": key})


@router.get("", response_model=ApiKeyList, operation_id="gateway_list_api_keys",
            summary="List the caller's API keys (never the secrets)")
def list_keys(principal: PrincipalDep, svc: AccountsDep) -> ApiKeyList:
    items = [ApiKeyOut.model_validate(k) for k in svc.list_api_keys(principal.account_id)]
    return ApiKeyList(items=items, total=len(items))


@router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke an API key",
               operation_id="gateway_revoke_api_key", responses=error_responses(*AUTH_ERRORS, ApiKeyNotFound))
def revoke_key(key_id: str, principal: PrincipalDep, svc: AccountsDep) -> ApiKeyOut:
    return ApiKeyOut.model_validate(svc.revoke_api_key(principal.account_id, key_id))
