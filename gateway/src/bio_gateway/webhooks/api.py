"""/api/v1/webhooks: register, list, inspect, delete and re-enable endpoints; deliveries with their
attempts; redelivery."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from bio_gateway.api.deps import current_principal
from bio_gateway.service import Principal
from bio_gateway.webhooks.events import EVENT_TYPES
from bio_gateway.webhooks.hub import WebhookHub
from bio_shared.app import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/webhooks", tags=["gateway: webhooks"], responses=ERROR_RESPONSES)

PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _hub(request: Request) -> WebhookHub:
    return request.app.state.webhooks


HubDep = Annotated[WebhookHub, Depends(_hub)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


class WebhookIn(BaseModel):
    url: str = Field(max_length=2048, description="http(s) URL that receives POSTed JSON events")
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES) + 1,
                              description=f"event types, or ['*']: {', '.join(EVENT_TYPES)}")


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    url: str
    events: list[str]
    active: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="signing secret, shown once: verify the Bio-Signature header with it")


class WebhookList(BaseModel):
    items: list[WebhookOut]
    total: int
    limit: int
    offset: int


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]
    attempt_log: list[AttemptOut] = []


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int


@router.post("", status_code=201, response_model=WebhookCreated, operation_id="gateway_create_webhook",
             summary="Register an endpoint for events (the signing secret is in this answer only)")
async def create_webhook(body: WebhookIn, principal: PrincipalDep, hub: HubDep) -> WebhookCreated:
    row, secret = await run_in_threadpool(hub.create, principal.account_id, body.url, body.events)
    return WebhookCreated(**WebhookOut.model_validate(row).model_dump(), secret=secret)


@router.get("", response_model=WebhookList, operation_id="gateway_list_webhooks", summary="The account's endpoints")
async def list_webhooks(principal: PrincipalDep, hub: HubDep, limit: Limit = 50, offset: Offset = 0) -> WebhookList:
    rows, total = await run_in_threadpool(hub.list_endpoints, principal.account_id, limit, offset)
    return WebhookList(items=[WebhookOut.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{webhook_id}", response_model=WebhookOut, operation_id="gateway_get_webhook", summary="One endpoint")
async def get_webhook(webhook_id: str, principal: PrincipalDep, hub: HubDep) -> WebhookOut:
    return WebhookOut.model_validate(await run_in_threadpool(hub.get, principal.account_id, webhook_id))


@router.delete("/{webhook_id}", status_code=204, response_class=Response, operation_id="gateway_delete_webhook",
               summary="Delete an endpoint and its delivery log")
async def delete_webhook(webhook_id: str, principal: PrincipalDep, hub: HubDep) -> Response:
    await run_in_threadpool(hub.delete, principal.account_id, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/enable", response_model=WebhookOut, operation_id="gateway_enable_webhook",
             summary="Re-enable an endpoint that was disabled after repeated failures")
async def enable_webhook(webhook_id: str, principal: PrincipalDep, hub: HubDep) -> WebhookOut:
    return WebhookOut.model_validate(await run_in_threadpool(hub.enable, principal.account_id, webhook_id))


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, operation_id="gateway_list_webhook_deliveries",
            summary="Deliveries of an endpoint, newest first, each with its attempts")
async def list_deliveries(webhook_id: str, principal: PrincipalDep, hub: HubDep, limit: Limit = 50,
                          offset: Offset = 0) -> DeliveryList:
    rows, total = await run_in_threadpool(hub.deliveries, principal.account_id, webhook_id, limit, offset)
    items = [DeliveryOut(**DeliveryOut.model_validate(d).model_dump(exclude={"attempt_log"}),
                         attempt_log=[AttemptOut.model_validate(a) for a in attempts]) for d, attempts in rows]
    return DeliveryList(items=items, total=total, limit=limit, offset=offset)


@router.post("/deliveries/{delivery_id}/redeliver", status_code=202, response_model=DeliveryOut,
             operation_id="gateway_redeliver_webhook", summary="Send a delivery again (a new round of attempts)")
async def redeliver(delivery_id: str, principal: PrincipalDep, hub: HubDep) -> DeliveryOut:
    return DeliveryOut.model_validate(await run_in_threadpool(hub.redeliver, principal.account_id, delivery_id))
