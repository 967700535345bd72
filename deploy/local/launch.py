#!/usr/bin/env python3
"""Local supervisor of the distributed mode on loopback: gateway, four services, four Celery workers.

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
    BIO_LAUNCH_PORT          8000  gateway; the services listen on PORT+1 .. PORT+4
    BIO_LAUNCH_METRICS_PORT  9101  worker metrics on PORT .. PORT+3 (0: no worker metrics server)
    BIO_LAUNCH_TIMEOUT_S     60    how long to wait for readiness
    BIO_LAUNCH_STOP_TIMEOUT_S 10   how long ``down`` waits after SIGTERM before SIGKILL

Any other ``BIO_*`` variable (e.g. ``BIO_LOG_LEVEL``, ``BIO_MAX_UPLOAD_BYTES``) is passed through.

Importable (tests, benchmarks)::

    info = launch.up({"BIO_DATABASE_URL": url, ...}, var_dir=tmp / "var", port_base=23000)
    ...
    launch.down(tmp / "var")
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_METRICS_PORT = 9101
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_STOP_TIMEOUT_S = 10.0

# (service name as the gateway knows it, console script), in port order.
SERVICES: list[tuple[str, str]] = [
    ("fingerprint", "bio-fingerprint"),
    ("face_recognition", "bio-face-recognition"),
    ("face_verify", "bio-face-verify"),
    ("contour_mask", "bio-contour-mask"),
]
SECRET_KEYS = ("BIO_INTERNAL_SECRET", "BIO_GATEWAY_JWT_SECRET")
# Variables of the parent that must not leak into children (each process gets its own or none).
_NOT_INHERITED = ("PROMETHEUS_MULTIPROC_DIR", "BIO_WORKER_METRICS_PORT", "BIO_GATEWAY_SERVICES")

START_PG = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no'

# Popen objects of the processes this interpreter started, so down() can reap them (no zombies).
_CHILDREN: dict[int, subprocess.Popen] = {}


class LaunchError(RuntimeError):
    """A clear, actionable reason why the stack cannot start (printed by the CLI, exit 1)."""


@dataclass
class Proc:
    name: str  # "gateway", "fingerprint", "fingerprint-worker", ...
    kind: str  # "api" or "worker"
    argv: list[str]
    port: int | None = None  # API port, or the worker's metrics port (None: none)
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of the common environment
    pid: int | None = None
    starttime: int | None = None
    log: str = ""


# -- small helpers ---------------------------------------------------------------------------------
def _say(msg: str, quiet: bool = False) -> None:
    if not quiet:
        print(msg, flush=True)


def console_script(name: str) -> str:
    """A console script of the project: next to this interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise LaunchError(f"'{name}' is not installed next to {sys.executable} nor on PATH; run 'make install' first")


def paths(var_dir: Path) -> dict[str, Path]:
    var_dir = Path(var_dir)
    return {"var": var_dir, "run": var_dir / "run", "log": var_dir / "log", "prom": var_dir / "run" / "prom",
            "state": var_dir / "run" / "stack.json", "secrets": var_dir / "run" / "secrets.env"}


def resolve_var_dir(var_dir: Path | str | None = None, env: dict[str, str] | None = None) -> Path:
    value = var_dir or (env or {}).get("BIO_VAR_DIR") or os.environ.get("BIO_VAR_DIR") or "var"
    p = Path(value).expanduser()
    return (p if p.is_absolute() else ROOT / p).resolve()


def tail(path: Path | str, lines: int = 30) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is fine
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_base(count: int = 9, host: str = DEFAULT_HOST, lo: int = 20000, hi: int = 40000) -> int:
    """A base port such that base .. base+count-1 are all free (for isolated stacks in tests)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(lo, hi - count)
        if all(port_free(host, base + i) for i in range(count)):
            return base
    raise LaunchError(f"no {count} consecutive free ports found between {lo} and {hi}")


# -- process identity (pid reuse safety) and liveness ---------------------------------------------
def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgid, starttime) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return fields[0], int(fields[2]), int(fields[19])


def _reap(pid: int) -> None:
    """Collect the exit status of a child of this interpreter so it does not linger as a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def pid_alive(pid: int, starttime: int | None = None) -> bool:
    """True if ``pid`` runs (zombies count as dead) and, when given, started at ``starttime``."""
    _reap(pid)
    st = _proc_stat(pid)
    if st is None:
        if not Path("/proc").is_dir():  # not Linux: best effort
            try:
                os.kill(pid, 0)
                return True
            except OSError:
                return False
        return False
    state, _, started = st
    if state in ("Z", "X"):
        return False
    return starttime is None or started == starttime


def live_groups(pgids: set[int] | None = None) -> dict[int, list[int]]:
    """pgid -> live (non-zombie) member pids, for the given process groups (one pass over /proc)."""
    if not Path("/proc").is_dir():  # not Linux: best effort with signal 0
        found = {}
        for pgid in pgids or ():
            try:
                os.killpg(pgid, 0)
                found[pgid] = [pgid]
            except OSError:
                pass
        return found
    groups: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _proc_stat(int(entry))
        if st and st[0] not in ("Z", "X") and (pgids is None or st[1] in pgids):
            groups.setdefault(st[1], []).append(int(entry))
    return groups


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    return live_groups({pgid}).get(pgid, [])


# -- dependency checks ---------------------------------------------------------------------------------
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
    _say(f"created PostgreSQL database {database!r}", quiet)


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


# -- configuration ----------------------------------------------------------------------------------
def _load_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    except FileNotFoundError:
        pass
    return values


def ensure_secrets(var_dir: Path, given: dict[str, str]) -> dict[str, str]:
    """The stack's secrets: given ones win; others come from var/run/secrets.env, generated once."""
    path = paths(var_dir)["secrets"]
    stored = _load_env_file(path)
    result, changed = {}, False
    for key in SECRET_KEYS:
        if given.get(key):
            result[key] = given[key]
            continue
        if not stored.get(key):
            stored[key] = secrets.token_urlsafe(48)
            changed = True
        result[key] = stored[key]
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secrets.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# generated by deploy/local/launch.py; shared by every process of the local stack\n")
            fh.writelines(f"{k}={v}\n" for k, v in stored.items())
        os.replace(tmp, path)
    return result


# Services whose Celery app has a beat schedule (the fingerprint clean-up of old outputs).
BEAT_SERVICES = {"fingerprint"}


def build_plan(env: dict[str, str], host: str, port_base: int, metrics_port_base: int,
               services: list[str] | None = None, workers: bool = True) -> list[Proc]:
    """What to start. ``services`` limits the services (the gateway routes only those)."""
    chosen = [(n, script) for n, script in SERVICES if services is None or n in services]
    unknown = set(services or ()) - {n for n, _ in SERVICES}
    if unknown:
        raise LaunchError(f"unknown services {sorted(unknown)}; known: {[n for n, _ in SERVICES]}")
    index = {n: i for i, (n, _) in enumerate(SERVICES)}
    urls = {n: f"http://{host}:{port_base + 1 + index[n]}" for n, _ in chosen}
    plan = [Proc("gateway", "api", [console_script("bio-platform"), "serve", "--host", host, "--port", str(port_base)],
                 port=port_base, url=f"http://{host}:{port_base}",
                 env={"BIO_GATEWAY_SERVICES": json.dumps(urls)})]
    for n, script in chosen:
        port = port_base + 1 + index[n]
        plan.append(Proc(n, "api", [console_script(script), "serve", "--host", host, "--port", str(port)], port=port,
                         url=urls[n]))
    if workers:
        for n, script in chosen:
            mport = metrics_port_base + index[n] if metrics_port_base else None
            extra = {"BIO_WORKER_METRICS_PORT": str(mport)} if mport else {}
            extra["BIO_WORKER_METRICS_ADDR"] = host
            argv = [console_script(script), "worker"]
            if n in BEAT_SERVICES:  # the one worker of this service also runs its periodic schedule
                argv += ["--beat", "--schedule", str(Path(env.get("BIO_VAR_DIR", "var")) / "run" / f"{n}-beat")]
            plan.append(Proc(f"{n}-worker", "worker", argv, port=mport,
                             url=f"http://{host}:{mport}/metrics" if mport else None, env=extra))
    return plan


def _int_env(env: dict[str, str], key: str, default: int) -> int:
    value = env.get(key, "")
    try:
        return int(value) if value != "" else default
    except ValueError as exc:
        raise LaunchError(f"{key} must be an integer, got {value!r}") from exc


# -- state files ------------------------------------------------------------------------------------
def _write_state(var_dir: Path, plan: list[Proc], extra: dict) -> None:
    p = paths(var_dir)
    state = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra,
             "processes": [{k: v for k, v in asdict(proc).items() if k != "env"} for proc in plan]}
    tmp = p["state"].with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, p["state"])


def read_state(var_dir: Path) -> dict:
    try:
        return json.loads(paths(var_dir)["state"].read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _pidfiles(var_dir: Path) -> dict[str, int]:
    found = {}
    run = paths(var_dir)["run"]
    if run.is_dir():
        for f in sorted(run.glob("*.pid")):
            try:
                found[f.stem] = int(f.read_text().strip())
            except ValueError:
                f.unlink(missing_ok=True)
    return found


# -- start --------------------------------------------------------------------------------------------
def _spawn(proc: Proc, env: dict[str, str], var_dir: Path) -> None:
    p = paths(var_dir)
    log_path = p["log"] / f"{proc.name}.log"
    if log_path.exists() and log_path.stat().st_size:
        os.replace(log_path, log_path.with_name(log_path.name + ".1"))  # keep the previous run's log
    full_env = {**env, **proc.env}
    if proc.kind == "worker":
        service = proc.name.removesuffix("-worker")
        prom = p["prom"] / service
        shutil.rmtree(prom, ignore_errors=True)  # multiprocess metrics must start from an empty dir
        prom.mkdir(parents=True)
        full_env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(proc.argv, cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    _CHILDREN[child.pid] = child
    proc.pid = child.pid
    st = _proc_stat(child.pid)
    proc.starttime = st[2] if st else None
    proc.log = str(log_path)
    (p["run"] / f"{proc.name}.pid").write_text(f"{child.pid}\n")


def start_process(var_dir: Path | str, name: str, argv: list[str], env: dict[str, str], *, kind: str = "api",
                  port: int | None = None, url: str | None = None) -> Proc:
    """Start one extra process the way ``up`` does (own process group, log under var/log, pid file
    under var/run), e.g. a second worker in a test; ``down(var_dir)`` stops it with the rest."""
    var_dir = resolve_var_dir(var_dir)
    for d in (paths(var_dir)["run"], paths(var_dir)["log"]):
        d.mkdir(parents=True, exist_ok=True)
    proc = Proc(name, kind, list(argv), port=port, url=url)
    _spawn(proc, {k: str(v) for k, v in env.items()}, var_dir)
    return proc


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _ready(proc: Proc) -> bool:
    if proc.kind == "api":
        return _http_ok(f"{proc.url}/readyz")
    if proc.port:  # the worker starts its metrics server once Celery reports it is ready
        return _http_ok(proc.url or "")
    text = tail(proc.log, 200).lower()
    return " ready" in text


def wait_ready(plan: list[Proc], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = {proc.name: proc for proc in plan}
    while pending:
        for name, proc in list(pending.items()):
            if not pid_alive(proc.pid or -1):
                raise LaunchError(f"{name} exited during start-up; last lines of {proc.log}:\n{tail(proc.log)}")
            if _ready(proc):
                del pending[name]
        if not pending:
            break
        if time.monotonic() > deadline:
            report = []
            for name, proc in pending.items():
                what = f"{proc.url}/readyz" if proc.kind == "api" else (proc.url or "worker ready line")
                report.append(f"--- {name} did not become ready ({what}); last lines of {proc.log}:\n"
                              f"{tail(proc.log)}")
            raise LaunchError(f"not ready after {timeout_s:.0f} s: {', '.join(pending)}\n" + "\n".join(report))
        time.sleep(0.25)


def up(env_overrides: dict[str, str] | None = None, var_dir: Path | str | None = None,
       port_base: int | None = None, *, metrics_port_base: int | None = None, host: str | None = None,
       services: list[str] | None = None, workers: bool = True, timeout_s: float | None = None,
       migrate: bool = True, quiet: bool = False) -> dict:
    """Start the stack and wait until it is ready; returns what is running (see ``info``).

    ``env_overrides`` wins over the environment of this process (e.g. ``BIO_DATABASE_URL``,
    ``BIO_REDIS_URL``, ``BIO_MAX_UPLOAD_BYTES``). On any failure everything started is stopped again
    and :class:`LaunchError` is raised."""
    overrides = {k: str(v) for k, v in (env_overrides or {}).items()}
    merged = {**os.environ, **overrides}
    var_dir = resolve_var_dir(var_dir, overrides)
    host = host or merged.get("BIO_LAUNCH_HOST") or DEFAULT_HOST
    port_base = port_base if port_base is not None else _int_env(merged, "BIO_LAUNCH_PORT", DEFAULT_PORT)
    if metrics_port_base is None:
        metrics_port_base = _int_env(merged, "BIO_LAUNCH_METRICS_PORT", DEFAULT_METRICS_PORT)
    timeout_s = timeout_s if timeout_s is not None else float(merged.get("BIO_LAUNCH_TIMEOUT_S") or DEFAULT_TIMEOUT_S)
    p = paths(var_dir)

    running = _targets(var_dir)
    if running:
        raise LaunchError(f"a stack is already running from {var_dir} ({', '.join(sorted(running))}); "
                          "run 'make down' (launch.py down) first")
    if _pidfiles(var_dir):
        down(var_dir, quiet=True)  # stale pid files of a stack that died: clear them
    for d in (p["run"], p["log"]):
        d.mkdir(parents=True, exist_ok=True)

    database_url = merged.get("BIO_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = merged.get("BIO_REDIS_URL") or DEFAULT_REDIS_URL
    check_postgres(database_url, quiet=quiet)
    check_redis(redis_url)

    env = {k: v for k, v in merged.items() if k not in _NOT_INHERITED}
    env.update(BIO_DATABASE_URL=database_url, BIO_REDIS_URL=redis_url, BIO_VAR_DIR=str(var_dir),
               PYTHONUNBUFFERED="1")
    env.update(ensure_secrets(var_dir, merged))
    plan = build_plan(env, host, port_base, metrics_port_base, services, workers)
    busy = [f"{proc.port} ({proc.name})" for proc in plan if proc.port and not port_free(host, proc.port)]
    if busy:
        raise LaunchError(f"ports already in use on {host}: {', '.join(busy)}; stop what uses them, or set "
                          "BIO_LAUNCH_PORT / BIO_LAUNCH_METRICS_PORT")

    if migrate:
        _say("migrating (bio-platform migrate) ...", quiet)
        mlog = p["log"] / "migrate.log"
        with open(mlog, "wb") as log:
            try:
                rc = subprocess.run([console_script("bio-platform"), "migrate"], cwd=ROOT, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    timeout=300).returncode
            except subprocess.TimeoutExpired as exc:
                raise LaunchError(f"migrations did not finish in 300 s; see {mlog}:\n{tail(mlog)}") from exc
        if rc != 0:
            raise LaunchError(f"migrations failed (exit {rc}); last lines of {mlog}:\n{tail(mlog)}")

    extra = {"var_dir": str(var_dir), "host": host, "port_base": port_base, "database_url": database_url,
             "redis_url": redis_url}
    try:
        for proc in plan:
            _spawn(proc, env, var_dir)
        _write_state(var_dir, plan, extra)
        _say(f"started {len(plan)} processes; waiting for readiness (up to {timeout_s:.0f} s) ...", quiet)
        wait_ready(plan, timeout_s)
    except BaseException:
        down(var_dir, quiet=True)
        raise
    info = {
        **extra,
        "gateway_url": plan[0].url,
        "services": {proc.name: proc.url for proc in plan[1:] if proc.kind == "api"},
        "processes": {proc.name: {"pid": proc.pid, "kind": proc.kind, "port": proc.port, "url": proc.url,
                                  "log": proc.log} for proc in plan},
        "internal_secret": env["BIO_INTERNAL_SECRET"],
        "jwt_secret": env["BIO_GATEWAY_JWT_SECRET"],
        "env": {k: v for k, v in env.items() if k.startswith("BIO_") and k not in SECRET_KEYS},
    }
    _say(render_table(var_dir), quiet)
    return info


# -- stop -----------------------------------------------------------------------------------------------
def _targets(var_dir: Path) -> dict[str, int]:
    """Process groups to stop: pid files whose process (or group) is still ours."""
    starttimes = {proc["name"]: proc.get("starttime") for proc in read_state(var_dir).get("processes", [])}
    pidfiles = _pidfiles(var_dir)
    for pid in pidfiles.values():
        _reap(pid)
    alive = live_groups(set(pidfiles.values()))
    targets = {}
    for name, pid in pidfiles.items():
        st = _proc_stat(pid)
        if st is not None and st[0] not in ("Z", "X") and starttimes.get(name) not in (None, st[2]):
            continue  # the pid now belongs to an unrelated process
        if pid in alive:
            targets[name] = pid
    return targets


def _signal_groups(groups: dict[str, int], sig: int) -> None:
    for pgid in groups.values():
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(groups: dict[str, int], timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    left = dict(groups)
    while left:
        for pgid in left.values():
            _reap(pgid)
        alive = live_groups(set(left.values()))
        left = {name: pgid for name, pgid in left.items() if pgid in alive}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return left


def down(var_dir: Path | str | None = None, *, timeout_s: float | None = None, quiet: bool = False,
         names: list[str] | None = None) -> list[str]:
    """SIGTERM every process group of the stack, wait, SIGKILL what is left, remove the pid files.
    Idempotent. ``names`` stops only those processes (the stack file and secrets stay)."""
    var_dir = resolve_var_dir(var_dir)
    if timeout_s is None:
        timeout_s = float(os.environ.get("BIO_LAUNCH_STOP_TIMEOUT_S") or DEFAULT_STOP_TIMEOUT_S)
    p = paths(var_dir)
    targets = _targets(var_dir)
    if names is not None:
        targets = {n: pid for n, pid in targets.items() if n in names}
    if targets:
        _signal_groups(targets, signal.SIGTERM)
        left = _wait_gone(targets, timeout_s)
        if left:
            _say(f"still running after {timeout_s:.0f} s, sending SIGKILL: {', '.join(left)}", quiet)
            _signal_groups(left, signal.SIGKILL)
            left = _wait_gone(left, 5.0)
            if left:
                _say(f"could not stop: {', '.join(f'{n} (pgid {g})' for n, g in left.items())}", quiet)
    for name in (names if names is not None else list(_pidfiles(var_dir))):
        (p["run"] / f"{name}.pid").unlink(missing_ok=True)
    if names is None:
        p["state"].unlink(missing_ok=True)
        shutil.rmtree(p["prom"], ignore_errors=True)
    _say(f"stopped: {', '.join(targets)}" if targets else "nothing running", quiet)
    return list(targets)


def stop(var_dir: Path | str | None, name: str, *, timeout_s: float = 10.0) -> bool:
    """Stop one process of the stack (its whole process group); True if it was running."""
    return bool(down(var_dir, timeout_s=timeout_s, quiet=True, names=[name]))


# -- status ---------------------------------------------------------------------------------------------
def status(var_dir: Path | str | None = None) -> dict[str, dict]:
    """name -> {pid, alive, ready, url, kind, log} for every process the stack file or a pid file knows."""
    var_dir = resolve_var_dir(var_dir)
    state = read_state(var_dir)
    known = {proc["name"]: proc for proc in state.get("processes", [])}
    pids = _pidfiles(var_dir)
    result = {}
    for name in list(known) + [n for n in pids if n not in known]:
        proc = known.get(name, {})
        pid = pids.get(name)
        alive = bool(pid and pid_alive(pid, proc.get("starttime")))
        ready = None
        if alive and proc.get("kind") == "api" and proc.get("url"):
            ready = _http_ok(f"{proc['url']}/readyz", timeout=1.0)
        elif alive and proc.get("kind") == "worker" and proc.get("port"):
            ready = _http_ok(proc["url"], timeout=1.0)
        result[name] = {"pid": pid, "alive": alive, "ready": ready, "kind": proc.get("kind", "?"),
                        "url": proc.get("url"), "log": proc.get("log")}
    return result


def render_table(var_dir: Path | str | None = None) -> str:
    rows = status(var_dir)
    if not rows:
        return "nothing running"
    head = ("NAME", "PID", "STATE", "URL")
    lines = []
    for name, r in rows.items():
        state = ("ready" if r["ready"] else "alive" if r["ready"] is None else "not ready") if r["alive"] else "DEAD"
        url = r["url"] or "-"
        if r["kind"] == "api" and r["url"] and name == "gateway":
            url += "  (docs: /docs)"
        lines.append((name, str(r["pid"] or "-"), state, url))
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(3)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    out = [fmt.format(*head), *(fmt.format(*line) for line in lines)]
    out.append(f"logs: {resolve_var_dir(var_dir) / 'log'}/<name>.log")
    return "\n".join(out)


# -- command line ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--var-dir", help="default: $BIO_VAR_DIR or var/ of the repository")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            rows = status(args.var_dir)
            if rows and all(r["alive"] for r in rows.values()):
                print("already running (make down stops it):")
                print(render_table(args.var_dir))
                return 0
            info = up(var_dir=args.var_dir)
            print(f"\ngateway: {info['gateway_url']}  (API docs: {info['gateway_url']}/docs)   stop with: make down")
            return 0
        if args.command == "down":
            down(args.var_dir)
            return 0
        rows = status(args.var_dir)
        print(render_table(args.var_dir))
        alive = [r["alive"] for r in rows.values()]
        return 0 if all(alive) or not any(alive) else 1  # 1: some process of the stack has died
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
