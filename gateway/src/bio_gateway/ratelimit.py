"""Rate limits with the `limits` library (what slowapi builds on): Redis in the distributed mode, so
every gateway replica shares one count; memory in the embedded mode. Moving windows, so a burst at
a window edge cannot double the allowance."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from bio_shared.errors import TooManyRequests
from bio_shared.metrics import RATE_LIMITED

log = logging.getLogger(__name__)


class RateLimiter:
    """Async throughout: a Redis round trip (~0.1 ms) must not stall the event loop of the proxy."""

    def __init__(self, storage_uri: str) -> None:
        options: dict[str, float | str | bool] = {}
        if storage_uri.startswith("redis"):
            options = {"implementation": "redispy", "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        elif storage_uri.startswith("memory"):
            options = {}
        self.storage_uri = storage_uri
        storage = storage_from_string(f"async+{storage_uri}", **options)
        if not isinstance(storage, AsyncStorage):  # "async+" always gives one; this tells mypy
            raise TypeError(f"{storage_uri}: not an asyncio rate-limit store")
        self.storage = storage
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._parsed: dict[str, RateLimitItem] = {}

    def _item(self, rate: str) -> RateLimitItem:
        item = self._parsed.get(rate)
        if item is None:
            item = self._parsed[rate] = parse(rate)
        return item

    async def hit(self, scope: str, key: str, rate: str) -> None:
        """Count one request; raise 429 with Retry-After when the limit is exceeded.

        If the limit store is unreachable the request is let through (and logged): an outage of
        Redis must not take the whole API down; the database-backed checks still apply."""
        item = self._item(rate)
        try:
            if await self.strategy.hit(item, scope, key):
                return
            stats = await self.strategy.get_window_stats(item, scope, key)
        except Exception:
            log.warning("rate-limit store %s unavailable; request allowed", self.storage_uri, exc_info=True)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        RATE_LIMITED.labels(scope).inc()
        raise TooManyRequests(f"rate limit of {rate} exceeded; retry in {retry_after} s", code="rate_limited",
                              details={"limit": rate, "retry_after_s": retry_after},
                              headers={"Retry-After": str(retry_after)})

    async def reset(self) -> None:
        try:
            await self.storage.reset()
        except Exception:
            log.warning("rate-limit store reset failed", exc_info=True)
