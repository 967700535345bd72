"""WebhookHub: endpoints of an account, fan-out of events into deliveries, and the delivery job.

Each delivery is a job of the gateway's ``webhooks`` queue (bio_shared.jobs: lease-fenced, Celery in
the distributed mode, threads in the embedded one): one attempt per run, exponential back-off between
attempts, every attempt logged; after the last one the delivery is failed, and an endpoint whose
deliveries failed ``webhook_disable_after`` times in a row is disabled.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bio_gateway.settings import GatewaySettings
from bio_gateway.webhooks import signing
from bio_gateway.webhooks.events import EVENT_TYPES, Event
from bio_gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from bio_gateway.webhooks.urls import check_url
from bio_shared.db import utcnow
from bio_shared.errors import NotFound, Unprocessable
from bio_shared.identity import Identity
from bio_shared.jobs import JobContext, JobQueue, TransientJobError

log = logging.getLogger(__name__)
DELIVER = "webhook.deliver"


class WebhookHub:
    celery: Any = None  # the Celery app of the webhooks queue (set by setup.build_hub)

    def __init__(self, sessions: sessionmaker[Session], settings: GatewaySettings, queue: JobQueue) -> None:
        self.sessions = sessions
        self.settings = settings
        self.queue = queue
        queue.handler(DELIVER)(self._deliver)

    @property
    def allow_private(self) -> bool:
        s = self.settings
        return s.webhook_allow_private if s.webhook_allow_private is not None else not s.is_production

    # -- endpoints -------------------------------------------------------------------------------
    def create(self, account_id: str, url: str, events: list[str]) -> tuple[WebhookEndpoint, str]:
        unknown = sorted(set(events) - set(EVENT_TYPES) - {"*"})
        if unknown or not events:
            raise Unprocessable("unknown or missing event types", code="invalid_event_types",
                                details={"unknown": unknown, "known": list(EVENT_TYPES)})
        check_url(url, allow_private=self.allow_private)
        secret = "whsec_" + secrets.token_urlsafe(32)
        with self.sessions() as db, db.begin():
            row = WebhookEndpoint(account_id=account_id, url=url, events=sorted(set(events)),
                                  secret=secret.encode(), active=True, consecutive_failures=0)
            db.add(row)
        return row, secret

    def list_endpoints(self, account_id: str, limit: int, offset: int) -> tuple[list[WebhookEndpoint], int]:
        with self.sessions() as db:
            where = WebhookEndpoint.account_id == account_id
            total = db.scalar(select(func.count()).select_from(WebhookEndpoint).where(where)) or 0
            rows = db.scalars(select(WebhookEndpoint).where(where).order_by(WebhookEndpoint.created_at)
                              .limit(limit).offset(offset))
            return list(rows), total

    def get(self, account_id: str, endpoint_id: str) -> WebhookEndpoint:
        with self.sessions() as db:
            row = db.get(WebhookEndpoint, endpoint_id) if len(endpoint_id) <= 32 else None
        if row is None or row.account_id != account_id:
            raise NotFound("webhook endpoint not found", code="webhook_not_found")
        return row

    def delete(self, account_id: str, endpoint_id: str) -> None:
        row = self.get(account_id, endpoint_id)
        with self.sessions() as db, db.begin():
            db.delete(db.get(WebhookEndpoint, row.id))

    def enable(self, account_id: str, endpoint_id: str) -> WebhookEndpoint:
        row = self.get(account_id, endpoint_id)
        with self.sessions() as db, db.begin():
            db.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == row.id)
                       .values(active=True, consecutive_failures=0, disabled_reason=None))
        return self.get(account_id, endpoint_id)

    def deliveries(self, account_id: str, endpoint_id: str, limit: int, offset: int
                   ) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], int]:
        self.get(account_id, endpoint_id)
        with self.sessions() as db:
            where = WebhookDelivery.endpoint_id == endpoint_id
            total = db.scalar(select(func.count()).select_from(WebhookDelivery).where(where)) or 0
            rows = list(db.scalars(select(WebhookDelivery).where(where)
                                   .order_by(WebhookDelivery.created_at.desc()).limit(limit).offset(offset)))
            attempts = {r.id: list(db.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == r.id)
                                              .order_by(WebhookAttempt.id))) for r in rows}
        return [(r, attempts[r.id]) for r in rows], total

    def redeliver(self, account_id: str, delivery_id: str) -> WebhookDelivery:
        with self.sessions() as db, db.begin():
            row = db.get(WebhookDelivery, delivery_id) if len(delivery_id) <= 32 else None
            if row is None or row.account_id != account_id:
                raise NotFound("delivery not found", code="delivery_not_found")
            row.status, row.last_error = "pending", None
        self._submit(account_id, delivery_id)
        return row

    # -- fan-out ---------------------------------------------------------------------------------
    def has_endpoints(self) -> bool:
        with self.sessions() as db:
            return db.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.active.is_(True)).limit(1)) is not None

    def emit(self, event: Event) -> int:
        """One delivery per active endpoint of the account subscribed to the event (idempotent on the
        event id, so an event seen twice is delivered once)."""
        with self.sessions() as db:
            endpoints = [e for e in db.scalars(select(WebhookEndpoint).where(
                WebhookEndpoint.account_id == event.account_id, WebhookEndpoint.active.is_(True)))
                if event.type in e.events or "*" in e.events]
        payload = {"id": event.id, "type": event.type, "account_id": event.account_id,
                   "created_at": utcnow().isoformat(), "data": event.data}
        made = 0
        for endpoint in endpoints:
            try:
                with self.sessions() as db, db.begin():
                    row = WebhookDelivery(endpoint_id=endpoint.id, account_id=event.account_id, event_id=event.id,
                                          event_type=event.type, payload=payload, status="pending", attempts=0)
                    db.add(row)
            except IntegrityError:
                continue  # already fanned out
            self._submit(event.account_id, row.id)
            made += 1
        return made

    def _submit(self, account_id: str, delivery_id: str) -> None:
        self.queue.submit(Identity(account_id, "user", None), DELIVER, {"delivery_id": delivery_id})

    # -- delivery (runs in a worker or an embedded job thread) ----------------------------------
    def _deliver(self, ctx: JobContext) -> dict[str, Any]:
        with self.sessions() as db:
            delivery = db.get(WebhookDelivery, ctx.params["delivery_id"])
            endpoint = db.get(WebhookEndpoint, delivery.endpoint_id) if delivery else None
        if delivery is None or endpoint is None:
            return {"delivered": False, "reason": "gone"}
        if not endpoint.active:
            self._close(delivery.id, "failed", None, "endpoint disabled")
            return {"delivered": False, "reason": "endpoint_disabled"}
        status, error, ms = self._post(endpoint, delivery)
        with self.sessions() as db, db.begin():
            db.add(WebhookAttempt(delivery_id=delivery.id, at=utcnow(), status_code=status, error=error,
                                  duration_ms=ms))
            db.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(
                attempts=WebhookDelivery.attempts + 1, last_status_code=status, last_error=error))
        if status is not None and 200 <= status < 300:
            self._close(delivery.id, "succeeded", endpoint.id, None)
            return {"delivered": True, "status_code": status}
        if ctx.attempt < self.queue.settings.job_max_attempts:
            raise TransientJobError(error or f"HTTP {status}")  # retried after 2^attempt s (capped at 60)
        self._close(delivery.id, "failed", endpoint.id, error or f"HTTP {status}")
        return {"delivered": False, "status_code": status}

    def _post(self, endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> tuple[int | None, str | None, float]:
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", signing.HEADER: signing.sign(endpoint.secret, body),
                   "Bio-Event-Id": delivery.event_id, "Bio-Event-Type": delivery.event_type,
                   "Bio-Delivery-Id": delivery.id, "User-Agent": "bio-platform-webhooks/1"}
        start = time.perf_counter()
        try:
            check_url(endpoint.url, allow_private=self.allow_private)  # DNS may have changed since
            r = httpx.post(endpoint.url, content=body, headers=headers, timeout=self.settings.webhook_timeout_s,
                           follow_redirects=False)
            return r.status_code, None if r.is_success else f"HTTP {r.status_code}", _ms(start)
        except httpx.TimeoutException:
            return None, f"timed out after {self.settings.webhook_timeout_s:g} s", _ms(start)
        except (httpx.HTTPError, Unprocessable) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], _ms(start)

    def _close(self, delivery_id: str, status: str, endpoint_id: str | None, error: str | None) -> None:
        now: datetime = utcnow()
        with self.sessions() as db, db.begin():
            db.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
                status=status, delivered_at=now if status == "succeeded" else None,
                last_error=error if status == "failed" else None))
            if endpoint_id is None:
                return
            ep = db.get(WebhookEndpoint, endpoint_id, with_for_update=True)
            if ep is None:
                return
            if status == "succeeded":
                ep.consecutive_failures = 0
            else:
                ep.consecutive_failures += 1
                if ep.consecutive_failures >= self.settings.webhook_disable_after:
                    ep.active = False
                    ep.disabled_reason = f"{ep.consecutive_failures} deliveries in a row failed"
                    log.warning("webhook endpoint %s disabled after %d failed deliveries", ep.id,
                                ep.consecutive_failures)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
