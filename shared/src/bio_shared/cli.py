"""Command-line entry points every service shares: migrate, serve, worker."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from bio_shared.db import migrate
from bio_shared.services import ServiceSpec


def service_cli(spec: ServiceSpec, extra: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] | None = None
                ) -> Callable[[list[str] | None], None]:
    def main(argv: list[str] | None = None) -> None:
        parser = argparse.ArgumentParser(prog=f"bio-{spec.name.replace('_', '-')}")
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("migrate", help="apply this service's database migrations")
        serve = sub.add_parser("serve", help="run the service API")
        serve.add_argument("--host", default="127.0.0.1")
        serve.add_argument("--port", type=int, default=8001)
        worker = sub.add_parser("worker", help="run a Celery worker on this service's queue")
        worker.add_argument("--concurrency", type=int, default=1)
        worker.add_argument("--pool", default="prefork")
        if extra:
            extra(sub)
        args, rest = parser.parse_known_args(argv)
        settings = spec.settings()
        if args.command == "migrate":
            migrate(spec.package, settings.database_url)
            print(f"{spec.name}: migrated")
        elif args.command == "serve":
            import uvicorn

            uvicorn.run(spec.create_app(settings), host=args.host, port=args.port, access_log=False,
                        log_config=None)
        elif args.command == "worker":
            os.execvp(sys.executable, [
                sys.executable, "-m", "celery", "-A", f"{spec.package}.tasks", "worker", "-Q", spec.name,
                "--pool", args.pool, "--concurrency", str(args.concurrency), "--hostname", f"{spec.name}@%h",
                "--without-gossip", "--without-mingle", *rest,
            ])
        else:
            args.handler(args, settings)

    return main
