"""Turns audited answers into webhook events (person enrolled, unknown face stored, no match)."""

from __future__ import annotations

from typing import Any

from bio_gateway.audit.store import Record
from bio_gateway.webhooks.events import from_answer
from bio_gateway.webhooks.hub import WebhookHub


class WebhookObserver:
    def __init__(self, hub: WebhookHub) -> None:
        self.hub = hub

    def __call__(self, rec: Record, body: Any) -> None:
        for event in from_answer(rec, body):
            self.hub.emit(event)
