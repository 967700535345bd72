"""Pre-flight checks: what must hold before a process starts, each failure with the fix to apply."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bio_launch.common import ROOT, LaunchError, Proc, console_script, paths, port_free, say, tail
from bio_launch.processes import pidfiles, targets

START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'
MIGRATE_TIMEOUT_S = 300


def check_postgres(url: str, *, create: bool = True, quiet: bool = False) -> None:
    import psycopg

    u = urlsplit(url)
    if not u.scheme.startswith("postgres"):
        return  # e.g. SQLite: nothing to reach
    host, port = u.hostname or "127.0.0.1", u.port or 5432
    database = unquote(u.path.lstrip("/")) or "postgres"
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        psycopg.connect(plain, connect_timeout=3).close()
        return
    except psycopg.OperationalError as exc:
        text = str(exc)
        if "does not exist" not in text or f'"{database}"' not in text:
            raise LaunchError(
                f"PostgreSQL is not usable at {host}:{port}: {text.strip()}\n"
                f"Start it with:  {START_PG}\nor point BIO_DATABASE_URL at a running server.") from exc
    if not create:
        raise LaunchError(f"database {database!r} does not exist; create it with:  createdb {database}")
    admin_url = plain.rsplit("/", 1)[0] + "/postgres"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute('CREATE DATABASE "{}"'.format(database.replace('"', '""')))
    except psycopg.Error as exc:
        raise LaunchError(f"database {database!r} does not exist and could not be created ({exc}); "
                          f"create it with:  createdb {database}") from exc
    say(f"created PostgreSQL database {database!r}", quiet)


def check_redis(url: str) -> None:
    import redis

    u = urlsplit(url)
    if u.scheme not in ("redis", "rediss"):
        raise LaunchError(f"BIO_REDIS_URL must be a redis:// URL, got {url!r}")
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        raise LaunchError(
            f"Redis is not usable at {u.hostname or '127.0.0.1'}:{u.port or 6379} ({exc}).\n"
            f"Start it with:  {START_REDIS}\nor point BIO_REDIS_URL at a running server.") from exc


def check_not_running(var_dir: Path) -> bool:
    """Refuse to start a second stack from one var dir; True when stale pid files are left to clear."""
    running = targets(var_dir)
    if running:
        raise LaunchError(f"a stack is already running from {var_dir} ({', '.join(sorted(running))}); "
                          "run 'make down' (launch.py down) first")
    return bool(pidfiles(var_dir))


def check_ports(plan: list[Proc], host: str) -> None:
    busy = [f"{proc.port} ({proc.name})" for proc in plan if proc.port and not port_free(host, proc.port)]
    if busy:
        raise LaunchError(f"ports already in use on {host}: {', '.join(busy)}; stop what uses them, or set "
                          "BIO_LAUNCH_PORT / BIO_LAUNCH_METRICS_PORT")


def run_migrations(var_dir: Path, env: dict[str, str], *, quiet: bool = False) -> None:
    """``bio-platform migrate`` (the gateway and every installed service), logged to var/log/migrate.log."""
    say("migrating (bio-platform migrate) ...", quiet)
    mlog = paths(var_dir)["log"] / "migrate.log"
    with open(mlog, "wb") as log:
        try:
            rc = subprocess.run([console_script("bio-platform"), "migrate"], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                timeout=MIGRATE_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired as exc:
            raise LaunchError(f"migrations did not finish in {MIGRATE_TIMEOUT_S} s; see {mlog}:\n{tail(mlog)}") from exc
    if rc != 0:
        raise LaunchError(f"migrations failed (exit {rc}); last lines of {mlog}:\n{tail(mlog)}")
