"""``up``: plan, check, migrate, start, wait until ready; stop everything again on any failure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bio_launch.common import SECRET_KEYS, Proc, paths, say
from bio_launch.health import render_table, wait_ready
from bio_launch.plan import Settings, build_plan, child_env, resolve_settings
from bio_launch.preflight import check_not_running, check_ports, check_postgres, check_redis, run_migrations
from bio_launch.processes import down, spawn, write_state


def up(env_overrides: dict[str, str] | None = None, var_dir: Path | str | None = None,
       port_base: int | None = None, *, metrics_port_base: int | None = None, host: str | None = None,
       services: list[str] | None = None, workers: bool = True, timeout_s: float | None = None,
       migrate: bool = True, quiet: bool = False) -> dict[str, Any]:
    """Start the stack and wait until it is ready; returns what is running (see ``info``).

    ``env_overrides`` wins over the environment of this process (e.g. ``BIO_DATABASE_URL``,
    ``BIO_REDIS_URL``, ``BIO_MAX_UPLOAD_BYTES``). On any failure everything started is stopped again
    and :class:`LaunchError` is raised."""
    overrides = {k: str(v) for k, v in (env_overrides or {}).items()}
    merged = {**os.environ, **overrides}
    settings = resolve_settings(merged, overrides, var_dir, port_base, metrics_port_base, host, timeout_s)
    p = paths(settings.var_dir)
    if check_not_running(settings.var_dir):
        down(settings.var_dir, quiet=True)  # stale pid files of a stack that died: clear them
    for d in (p["run"], p["log"]):
        d.mkdir(parents=True, exist_ok=True)
    check_postgres(settings.database_url, quiet=quiet)
    check_redis(settings.redis_url)
    env = child_env(merged, settings)
    plan = build_plan(env, settings.host, settings.port_base, settings.metrics_port_base, services, workers)
    check_ports(plan, settings.host)
    if migrate:
        run_migrations(settings.var_dir, env, quiet=quiet)
    extra = {"var_dir": str(settings.var_dir), "host": settings.host, "port_base": settings.port_base,
             "database_url": settings.database_url, "redis_url": settings.redis_url}
    start(plan, env, settings, extra, quiet=quiet)
    info = describe(plan, env, extra)
    say(render_table(settings.var_dir), quiet)
    return info


def start(plan: list[Proc], env: dict[str, str], settings: Settings, extra: dict[str, Any], *,
          quiet: bool = False) -> None:
    try:
        for proc in plan:
            spawn(proc, env, settings.var_dir)
        write_state(settings.var_dir, plan, extra)
        say(f"started {len(plan)} processes; waiting for readiness (up to {settings.timeout_s:.0f} s) ...", quiet)
        wait_ready(plan, settings.timeout_s)
    except BaseException:
        down(settings.var_dir, quiet=True)
        raise


def describe(plan: list[Proc], env: dict[str, str], extra: dict[str, Any]) -> dict[str, Any]:
    return {
        **extra,
        "gateway_url": plan[0].url,
        "services": {proc.name: proc.url for proc in plan[1:] if proc.kind == "api"},
        "processes": {proc.name: {"pid": proc.pid, "kind": proc.kind, "port": proc.port, "url": proc.url,
                                  "log": proc.log} for proc in plan},
        "internal_secret": env["BIO_INTERNAL_SECRET"],
        "jwt_secret": env["BIO_GATEWAY_JWT_SECRET"],
        "env": {k: v for k, v in env.items() if k.startswith("BIO_") and k not in SECRET_KEYS},
    }
