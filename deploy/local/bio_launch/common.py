"""Constants, paths under var/ and small helpers every part of the launcher uses."""

from __future__ import annotations

import os
import random
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_METRICS_PORT = 9101
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_STOP_TIMEOUT_S = 10.0
SECRET_KEYS = ("BIO_INTERNAL_SECRET", "BIO_GATEWAY_JWT_SECRET")


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


def say(msg: str, quiet: bool = False) -> None:
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


def ephemeral_port_low(default: int = 32768) -> int:
    """The lowest port the kernel hands out to outgoing connections (Linux: ip_local_port_range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def free_port_base(count: int = 10, host: str = DEFAULT_HOST, lo: int = 20000, hi: int = 40000) -> int:
    """A base port such that base .. base+count-1 are all free (for isolated stacks in tests).

    The range is clipped below the kernel's ephemeral range: a port free when checked there can be
    taken a moment later by any outgoing connection (a worker's to Redis or PostgreSQL) before the
    stack binds it."""
    hi = min(hi, ephemeral_port_low())
    if hi - count <= lo:
        raise LaunchError(f"no room for {count} ports between {lo} and the ephemeral range at {hi}")
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(lo, hi - count)
        if all(port_free(host, base + i) for i in range(count)):
            return base
    raise LaunchError(f"no {count} consecutive free ports found between {lo} and {hi}")


def int_env(env: dict[str, str], key: str, default: int) -> int:
    value = env.get(key, "")
    try:
        return int(value) if value != "" else default
    except ValueError as exc:
        raise LaunchError(f"{key} must be an integer, got {value!r}") from exc
