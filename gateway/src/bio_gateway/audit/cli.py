"""``bio-platform audit verify|purge``: check every chain (naming the first broken entry), or apply
the retention now."""

from __future__ import annotations

import argparse
import sys

from bio_gateway.audit.store import AuditLog
from bio_gateway.settings import GatewaySettings
from bio_shared.db import session_factory


def add_parser(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser("audit", help="verify the audit chains, or purge entries past the retention")
    verbs = a.add_subparsers(dest="audit_command", required=True)
    verbs.add_parser("verify", help="recompute every chain; exit 1 naming the first broken entry")
    p = verbs.add_parser("purge", help="delete entries older than the retention (the chains stay verifiable)")
    p.add_argument("--older-than-days", type=float, default=None,
                   help="default: BIO_GATEWAY_AUDIT_RETENTION_DAYS")


def run(args: argparse.Namespace, settings: GatewaySettings) -> None:
    audit = AuditLog(session_factory(settings.database_url), settings.audit_secret.encode())
    if args.audit_command == "verify":
        checked, broken = audit.verify()
        if broken is None:
            print(f"audit trail intact: {checked} entries verified")
            return
        where = f"entry id {broken.entry_id}" if broken.entry_id is not None else "the chain's end"
        print(f"audit trail BROKEN in the chain of account {broken.chain} at seq {broken.seq} ({where}): "
              f"{broken.reason}")
        sys.exit(1)
    days = args.older_than_days if args.older_than_days is not None else settings.audit_retention_days
    if days <= 0:
        sys.exit("purge: give --older-than-days or set BIO_GATEWAY_AUDIT_RETENTION_DAYS")
    print(f"removed {audit.purge(days)} audit entries older than {days:g} days")
