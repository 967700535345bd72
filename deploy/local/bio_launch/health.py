"""Readiness and status of the stack's processes."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bio_launch.common import LaunchError, Proc, resolve_var_dir, tail
from bio_launch.processes import pid_alive, pidfiles, read_state


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError):
        return False  # not up yet, or something other than our HTTP server on the port


def ready(proc: Proc) -> bool:
    if proc.kind == "api":
        return http_ok(f"{proc.url}/readyz")
    if proc.port:  # the worker starts its metrics server once Celery reports it is ready
        return http_ok(proc.url or "")
    text = tail(proc.log, 200).lower()
    return " ready" in text


def wait_ready(plan: list[Proc], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = {proc.name: proc for proc in plan}
    while pending:
        for name, proc in list(pending.items()):
            if not pid_alive(proc.pid or -1):
                raise LaunchError(f"{name} exited during start-up; last lines of {proc.log}:\n{tail(proc.log)}")
            if ready(proc):
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


def _readiness(proc: dict[str, Any]) -> bool | None:
    if proc.get("kind") == "api" and proc.get("url"):
        return http_ok(f"{proc['url']}/readyz", timeout=1.0)
    if proc.get("kind") == "worker" and proc.get("port"):
        return http_ok(proc["url"], timeout=1.0)
    return None


def status(var_dir: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """name -> {pid, alive, ready, url, kind, log} for every process the stack file or a pid file knows."""
    var_dir = resolve_var_dir(var_dir)
    state = read_state(var_dir)
    known = {proc["name"]: proc for proc in state.get("processes", [])}
    pids = pidfiles(var_dir)
    result = {}
    for name in list(known) + [n for n in pids if n not in known]:
        proc = known.get(name, {})
        pid = pids.get(name)
        alive = bool(pid and pid_alive(pid, proc.get("starttime")))
        result[name] = {"pid": pid, "alive": alive, "ready": _readiness(proc) if alive else None,
                        "kind": proc.get("kind", "?"), "url": proc.get("url"), "log": proc.get("log")}
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
