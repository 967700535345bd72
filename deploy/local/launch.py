#!/usr/bin/env python3
"""Local supervisor of the distributed mode on loopback: the gateway, every service and its Celery worker,
the webhooks worker and the fingerprint shard workers.

    python deploy/local/launch.py up       # check PostgreSQL + Redis, migrate, start, wait for /readyz
    python deploy/local/launch.py status   # which processes are alive (and ready)
    python deploy/local/launch.py down     # SIGTERM every process group, then SIGKILL leftovers

``make up`` / ``make status`` / ``make down`` call these with the project's .venv Python (psycopg and
redis-py come from there); it starts the installed console scripts (``bio-platform``,
``bio-fingerprint``, ...) found next to that Python.

Every process runs in its own session (process group), writes stdout+stderr to ``var/log/<name>.log``
and has its pid in ``var/run/<name>.pid``; ``var/run/stack.json`` describes the running stack.
The internal and JWT secrets are generated once into ``var/run/secrets.env`` (mode 600) and handed to
every process, so they all trust each other and tokens survive a restart.

Configuration (environment):

    BIO_DATABASE_URL         postgresql://postgres@127.0.0.1:5432/test   (created if missing and trusted)
    BIO_REDIS_URL            redis://127.0.0.1:6379/0
    BIO_VAR_DIR              var  (relative to the repository root)
    BIO_LAUNCH_HOST          127.0.0.1
    BIO_LAUNCH_PORT          8000  gateway; the services on PORT+1 .. PORT+n (bio_shared/services.toml order)
    BIO_LAUNCH_METRICS_PORT  9101  worker metrics on PORT .. PORT+n-1, then the webhooks worker and the
                                   shard workers (0: no worker metrics server)
    BIO_FINGERPRINT_SHARDS   2     shards of the fingerprint 1:N search, one shard worker each (1: none)
    BIO_LAUNCH_TIMEOUT_S     60    how long to wait for readiness
    BIO_LAUNCH_STOP_TIMEOUT_S 10   how long ``down`` waits after SIGTERM before SIGKILL

Any other ``BIO_*`` variable (e.g. ``BIO_LOG_LEVEL``, ``BIO_MAX_UPLOAD_BYTES``) is passed through.

The code is the ``bio_launch`` package beside this script: planning (``plan``), pre-flight checks
(``preflight``), process control (``processes``, ``health``) and the command line (``cli``); this script
re-exports what tests and benchmarks use. Importable::

    info = launch.up({"BIO_DATABASE_URL": url, ...}, var_dir=tmp / "var", port_base=23000)
    ...
    launch.down(tmp / "var")
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bio_launch package next to this script

from bio_launch.cli import main as _main
from bio_launch.common import (  # noqa: F401
    DEFAULT_DATABASE_URL,
    DEFAULT_HOST,
    DEFAULT_METRICS_PORT,
    DEFAULT_PORT,
    DEFAULT_REDIS_URL,
    DEFAULT_STOP_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    ROOT,
    SECRET_KEYS,
    LaunchError,
    Proc,
    console_script,
    free_port_base,
    paths,
    port_free,
    resolve_var_dir,
    tail,
)
from bio_launch.health import render_table, status, wait_ready  # noqa: F401
from bio_launch.plan import BEAT_SERVICES, SERVICES, build_plan, ensure_secrets  # noqa: F401
from bio_launch.preflight import START_PG, START_REDIS, check_postgres, check_redis  # noqa: F401
from bio_launch.processes import (  # noqa: F401
    down,
    group_members,
    live_groups,
    pid_alive,
    read_state,
    start_process,
    stop,
)
from bio_launch.stack import up  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    return _main(argv, description=(__doc__ or "").split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
