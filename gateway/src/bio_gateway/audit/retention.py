"""The scheduled purge of audit entries past the retention (off unless audit_retention_days > 0)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bio_gateway.audit.store import AuditLog
from bio_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


def start_retention(audit: AuditLog, settings: GatewaySettings) -> Callable[[], None]:
    """Start the purge loop; returns the function that stops it."""
    stop = threading.Event()
    if settings.audit_retention_days <= 0:
        return stop.set

    def loop() -> None:
        while True:
            try:
                removed = audit.purge(settings.audit_retention_days)
                if removed:
                    log.info("audit retention: %d entries older than %g days removed", removed,
                             settings.audit_retention_days)
            except Exception:
                log.exception("audit retention purge failed")
            if stop.wait(settings.audit_purge_interval_s):
                return

    threading.Thread(target=loop, name="audit-retention", daemon=True).start()
    return stop.set
