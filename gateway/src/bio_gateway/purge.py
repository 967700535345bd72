"""Deleting an account deletes its data in every service first.

The account is disabled before the services are asked, so it cannot create data while the purge
runs; it is removed only once every service confirmed. A service that is down leaves the account
disabled and the caller gets 503: the same DELETE can simply be repeated (each purge is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bio_gateway.exceptions import PurgeIncomplete
from bio_gateway.proxy import Upstream, UpstreamError
from bio_gateway.settings import GatewaySettings
from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity
from bio_shared.logging import request_id_var

log = logging.getLogger(__name__)


async def purge_account(upstreams: list[Upstream], account_id: str, actor_id: str,
                        settings: GatewaySettings) -> dict[str, Any]:
    token = sign_identity(Identity(actor_id, "admin", request_id_var.get()), settings.internal_secret,
                          settings.identity_ttl_s)

    async def one(upstream: Upstream) -> tuple[str, Any]:
        try:
            status, body = await upstream.request_json(
                "DELETE", f"{upstream.prefix}/admin/owners/{account_id}",
                {IDENTITY_HEADER: token, "x-request-id": request_id_var.get() or ""})
            return upstream.name, body["deleted"] if status == 200 else f"HTTP {status}"
        except UpstreamError as exc:
            return upstream.name, exc.kind

    results = dict(await asyncio.gather(*(one(u) for u in upstreams)))
    failed = {name: why for name, why in results.items() if not isinstance(why, dict)}
    if failed:
        log.warning("purge of account %s incomplete: %s", account_id, failed)
        raise PurgeIncomplete(details=failed)
    return results
