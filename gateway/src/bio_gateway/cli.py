"""``bio-platform``: migrate, run (embedded), serve (gateway only), create-admin."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from bio_gateway import keys_cli
from bio_gateway.audit import cli as audit_cli
from bio_gateway.settings import GatewaySettings
from bio_shared.db import migrate
from bio_shared.services import service_packages


def migrate_all(settings: GatewaySettings, *, with_services: bool) -> list[str]:
    done = ["gateway"]
    migrate("bio_gateway", settings.database_url)
    if with_services:
        for name, package in service_packages().items():
            # the service's own override (BIO_<NAME>_DATABASE_URL) wins over BIO_DATABASE_URL
            url = os.environ.get(f"BIO_{name.upper()}_DATABASE_URL") or settings.database_url
            migrate(package, url)
            done.append(name)
    return done


def _serve(settings: GatewaySettings, host: str, port: int) -> None:
    import uvicorn

    from bio_gateway.app import create_app

    uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_config=None,
                proxy_headers=settings.trust_forwarded_for, server_header=False)


def _create_admin(settings: GatewaySettings, email: str, password: str | None) -> None:
    from bio_gateway.service import Accounts
    from bio_shared.db import session_factory

    if not email:
        sys.exit("create-admin: --email is required")
    password = password or os.environ.get("BIO_ADMIN_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = getpass.getpass("password for the admin account (empty keeps an existing one): ") or None
    account, created = Accounts(session_factory(settings.database_url), settings).ensure_admin(email, password)
    print(f"admin {account.email} {'created' if created else 'promoted/updated'} (id {account.id})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bio-platform", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("migrate", help="apply migrations of the gateway and every installed service")
    m.add_argument("--gateway-only", action="store_true")
    for name, helptext in (("run", "migrate, then start the whole platform as one process (embedded mode)"),
                           ("serve", "start the gateway only (distributed mode: set BIO_GATEWAY_SERVICES)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    a = sub.add_parser("create-admin", help="create an admin account, or promote an existing one")
    a.add_argument("--email", required=True)
    a.add_argument("--password", help="default: $BIO_ADMIN_PASSWORD, else asked for on the terminal")
    audit_cli.add_parser(sub)
    keys_cli.add_parser(sub)
    w = sub.add_parser("worker", help="run the Celery worker that delivers webhooks (distributed mode)")
    w.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args(argv)

    settings = GatewaySettings()
    if args.command == "migrate":
        print("migrated:", ", ".join(migrate_all(settings, with_services=not args.gateway_only)))
    elif args.command == "run":
        if settings.services:
            sys.exit("run is the embedded mode; unset BIO_GATEWAY_SERVICES or use 'serve'")
        migrate_all(settings, with_services=True)
        print(f"platform on http://{args.host}:{args.port}  (API docs: http://{args.host}:{args.port}/docs)",
              flush=True)
        _serve(settings, args.host, args.port)
    elif args.command == "serve":
        _serve(settings, args.host, args.port)
    elif args.command == "audit":
        migrate("bio_gateway", settings.database_url)
        audit_cli.run(args, settings)
    elif args.command == "worker":
        os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "bio_gateway.webhooks.tasks", "worker",
                                   "-Q", "webhooks", "--concurrency", str(args.concurrency), "--hostname",
                                   "webhooks@%h", "--without-gossip", "--without-mingle"])
    elif args.command == "rotate-keys":
        keys_cli.run(args, settings)
    elif args.command == "create-admin":
        migrate("bio_gateway", settings.database_url)
        _create_admin(settings, args.email, args.password)


if __name__ == "__main__":
    main()
