"""Process control: spawn each process in its own process group with a log and a pid file, tell
whether a pid is still ours (pid reuse safe), and stop whole process groups."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bio_launch.common import DEFAULT_STOP_TIMEOUT_S, ROOT, Proc, paths, resolve_var_dir, say

# Popen objects of the processes this interpreter started, so down() can reap them (no zombies).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


# -- process identity (pid reuse safety) and liveness ---------------------------------------------
def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, pgid, starttime) from /proc/<pid>/stat, or None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no such process (or not readable)
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return fields[0], int(fields[2]), int(fields[19])


def reap(pid: int) -> None:
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
    reap(pid)
    st = proc_stat(pid)
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
        st = proc_stat(int(entry))
        if st and st[0] not in ("Z", "X") and (pgids is None or st[1] in pgids):
            groups.setdefault(st[1], []).append(int(entry))
    return groups


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    return live_groups({pgid}).get(pgid, [])


# -- state files ------------------------------------------------------------------------------------
def write_state(var_dir: Path, plan: list[Proc], extra: dict[str, Any]) -> None:
    p = paths(var_dir)
    state = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra,
             "processes": [{k: v for k, v in asdict(proc).items() if k != "env"} for proc in plan]}
    tmp = p["state"].with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.replace(tmp, p["state"])


def read_state(var_dir: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(paths(var_dir)["state"].read_text())
        return state
    except (FileNotFoundError, ValueError):
        return {}


def pidfiles(var_dir: Path) -> dict[str, int]:
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
def spawn(proc: Proc, env: dict[str, str], var_dir: Path) -> None:
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
    st = proc_stat(child.pid)
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
    spawn(proc, {k: str(v) for k, v in env.items()}, var_dir)
    return proc


# -- stop -----------------------------------------------------------------------------------------------
def targets(var_dir: Path) -> dict[str, int]:
    """Process groups to stop: pid files whose process (or group) is still ours."""
    starttimes = {proc["name"]: proc.get("starttime") for proc in read_state(var_dir).get("processes", [])}
    found = pidfiles(var_dir)
    for pid in found.values():
        reap(pid)
    alive = live_groups(set(found.values()))
    result = {}
    for name, pid in found.items():
        st = proc_stat(pid)
        if st is not None and st[0] not in ("Z", "X") and starttimes.get(name) not in (None, st[2]):
            continue  # the pid now belongs to an unrelated process
        if pid in alive:
            result[name] = pid
    return result


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
            reap(pgid)
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
    running = targets(var_dir)
    if names is not None:
        running = {n: pid for n, pid in running.items() if n in names}
    if running:
        _signal_groups(running, signal.SIGTERM)
        left = _wait_gone(running, timeout_s)
        if left:
            say(f"still running after {timeout_s:.0f} s, sending SIGKILL: {', '.join(left)}", quiet)
            _signal_groups(left, signal.SIGKILL)
            left = _wait_gone(left, 5.0)
            if left:
                say(f"could not stop: {', '.join(f'{n} (pgid {g})' for n, g in left.items())}", quiet)
    for name in (names if names is not None else list(pidfiles(var_dir))):
        (p["run"] / f"{name}.pid").unlink(missing_ok=True)
    if names is None:
        p["state"].unlink(missing_ok=True)
        shutil.rmtree(p["prom"], ignore_errors=True)
    say(f"stopped: {', '.join(running)}" if running else "nothing running", quiet)
    return list(running)


def stop(var_dir: Path | str | None, name: str, *, timeout_s: float = 10.0) -> bool:
    """Stop one process of the stack (its whole process group); True if it was running."""
    return bool(down(var_dir, timeout_s=timeout_s, quiet=True, names=[name]))
