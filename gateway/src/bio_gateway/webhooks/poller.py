"""Job events: each gateway process polls every service's finished jobs (an internal admin route,
never on the public API) after a cursor kept in the database, and fans them out to endpoints.

Polling is at-least-once (replicas may see the same job); deliveries are unique per endpoint and
event id, so a receiver gets each event once. Nothing is polled while no endpoint exists.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool

from bio_gateway.proxy import Upstream, UpstreamError
from bio_gateway.settings import GatewaySettings
from bio_gateway.webhooks.events import from_job
from bio_gateway.webhooks.hub import WebhookHub
from bio_gateway.webhooks.models import WebhookCursor
from bio_shared.db import utcnow
from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity

log = logging.getLogger(__name__)


class JobEventPoller:
    def __init__(self, hub: WebhookHub, upstreams: list[Upstream], settings: GatewaySettings) -> None:
        self.hub, self.upstreams, self.settings = hub, upstreams, settings
        self.cursors: dict[str, tuple[datetime, str]] = {}
        self._reaped = 0.0

    def _load_cursor(self, service: str) -> tuple[datetime, str]:
        with self.hub.sessions() as db:
            row = db.get(WebhookCursor, service)
            return (row.after_ts, row.after_id) if row else (utcnow(), "")

    def _save_cursor(self, service: str, ts: datetime, job_id: str) -> None:
        with self.hub.sessions() as db, db.begin():
            row = db.get(WebhookCursor, service)
            if row is None:
                db.add(WebhookCursor(service=service, after_ts=ts, after_id=job_id))
            elif (ts, job_id) > (row.after_ts, row.after_id):
                row.after_ts, row.after_id = ts, job_id

    async def poll_once(self) -> int:
        if not await run_in_threadpool(self.hub.has_endpoints):
            now = utcnow()
            for u in self.upstreams:  # nothing to deliver: start from now when an endpoint appears
                self.cursors[u.name] = (now, "")
            return 0
        emitted = 0
        for upstream in self.upstreams:
            try:
                emitted += await self._poll(upstream)
            except UpstreamError as exc:
                log.info("job events of %s not polled: %s", upstream.name, exc.kind)
        return emitted

    async def _poll(self, upstream: Upstream) -> int:
        if upstream.name not in self.cursors:
            self.cursors[upstream.name] = await run_in_threadpool(self._load_cursor, upstream.name)
        ts, last_id = self.cursors[upstream.name]
        token = sign_identity(Identity("gateway", "admin", None), self.settings.internal_secret,
                              self.settings.identity_ttl_s)
        status, body = await upstream.request_json(
            "GET", f"{upstream.prefix}/admin/job-events?" + urlencode({"after": ts.isoformat(), "after_id": last_id,
                                                                       "limit": 200}),
            {IDENTITY_HEADER: token})
        if status != 200:
            log.warning("job events of %s: HTTP %s %s", upstream.name, status, body)
            return 0
        emitted = 0
        for job in body["items"]:
            emitted += await run_in_threadpool(self.hub.emit, from_job(upstream.name, job))
            ts, last_id = datetime.fromisoformat(job["finished_at"]), job["id"]
        if body["items"]:
            self.cursors[upstream.name] = (ts, last_id)
            await run_in_threadpool(self._save_cursor, upstream.name, ts, last_id)
        return emitted

    async def run(self) -> None:
        interval = self.settings.webhook_poll_interval_s
        while True:
            try:
                await self.poll_once()
                loop_time = asyncio.get_running_loop().time()
                if loop_time - self._reaped > 30:  # deliveries whose worker died are sent again
                    self._reaped = loop_time
                    await run_in_threadpool(self.hub.queue.reap)
            except Exception:
                log.exception("webhook job-event poll failed")
            await asyncio.sleep(interval)
