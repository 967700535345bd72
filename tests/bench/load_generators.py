"""Load generators of the gateway benchmark: wrk (with a Lua script for the headers) or a Python
asyncio client, plus the CPU time each server process spends per request (from /proc)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any


def ensure_wrk(allow_install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not allow_install:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is not installed; installing it: apt-get install -y wrk", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for attempt in range(2):
            if attempt:
                subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
            try:
                done = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True,
                                      text=True, timeout=300)
            except subprocess.TimeoutExpired:
                break
            if done.returncode == 0 and shutil.which("wrk"):
                return shutil.which("wrk")
        print("could not install wrk; using the Python load generator", flush=True)
        return None
    print("wrk is not installed (install it with: sudo apt-get install -y wrk); using the Python load generator",
          flush=True)
    return None


# -- load generators --------------------------------------------------------------------------------------
_LUA = """
wrk.method = "GET"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}, ' ..
    '"latency_us": {{"min": %d, "mean": %.2f, "stdev": %.2f, "max": %d, ' ..
    '"p50": %d, "p90": %d, "p99": %d, "p999": %d}}}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
"""


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def run_wrk(wrk: str, url: str, headers: dict[str, str], *, connections: int, threads: int, duration_s: float,
            workdir: Path) -> dict[str, Any]:
    script = workdir / f"bench-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(_LUA.format(headers="\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}"
                                                   for k, v in headers.items())))
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
           "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    raw = json.loads(line[len("WRK_JSON "):])
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = sum(raw["errors"].values())
    return {
        "requests": raw["requests"], "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": lat["p50"] / 1000, "p90_ms": lat["p90"] / 1000, "p99_ms": lat["p99"] / 1000,
        "p999_ms": lat["p999"] / 1000, "mean_ms": round(lat["mean"] / 1000, 3), "max_ms": lat["max"] / 1000,
        "errors": errors, "error_detail": raw["errors"],
    }


async def _python_load(url: str, headers: dict[str, str], connections: int, duration_s: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10.0, headers=headers) as client:
        stop_at = time.perf_counter() + duration_s

        async def one_connection() -> None:
            nonlocal errors
            while True:
                start = time.perf_counter()
                if start >= stop_at:
                    return
                try:
                    r = await client.get(url)
                    await r.aread()
                    if r.status_code != 200:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(connections)))
        seconds = time.perf_counter() - began
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] * 1000, 3) if latencies else 0.0

    return {"requests": len(latencies), "seconds": round(seconds, 3),
            "rps": round(len(latencies) / seconds, 1) if seconds else 0.0,
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "p999_ms": pct(99.9),
            "mean_ms": round(sum(latencies) / len(latencies) * 1000, 3) if latencies else 0.0,
            "max_ms": round(latencies[-1] * 1000, 3) if latencies else 0.0, "errors": errors}


def measure(generator: str, wrk: str | None, url: str, headers: dict[str, str], connections: int,
            args: argparse.Namespace, workdir: Path, pids: dict[str, int]) -> dict[str, Any]:
    def once(duration: float) -> dict[str, Any]:
        if generator == "wrk":
            return run_wrk(wrk or "wrk", url, headers, connections=connections,
                           threads=min(args.threads, connections), duration_s=duration, workdir=workdir)
        return asyncio.run(_python_load(url, headers, connections, duration))

    if args.warmup > 0:
        once(args.warmup)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    result = once(args.duration)
    for name, pid in pids.items():  # CPU time the server processes spent per request of this run
        used = cpu_seconds(pid) - before[name]
        per_request = used * 1000 / result["requests"] if result["requests"] else None
        result[f"{name}_cpu_ms_per_request"] = None if per_request is None else round(per_request, 3)
    return result


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads), from /proc; 0 where unavailable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
