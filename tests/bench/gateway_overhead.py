#!/usr/bin/env python3
"""What the gateway adds to a request: the same cheap authenticated call, straight to the service and
through the gateway, on loopback (``make bench``; a benchmark, not a test: it never fails on a time).

It starts the gateway and the fingerprint service API (no workers: the call needs none) with
deploy/local/launch.py against a PostgreSQL database it creates and drops, and a Redis database
index that is empty (flushed afterwards). It registers an account, creates an API key, then loads

    GET /api/v1/fingerprint/jobs?limit=1

  * direct:  at the service port, with the signed identity header the gateway would send
             (bio_shared.identity.sign_identity with the stack's internal secret);
  * gateway: at the gateway port with the API key (authentication, Redis rate limit, identity
             signing, proxying), BIO_GATEWAY_RATE_LIMIT_API raised so nothing is refused;

with the same load generator, connections and duration, each after a warm-up. The generator is
``wrk`` (installed with apt-get when missing and running as root) with a Lua script for the headers
and the latency percentiles, or a Python asyncio + httpx generator when wrk is not available.

Writes <out>.md and <out>.json (default reports/gateway_overhead.*).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PATH = "/api/v1/fingerprint/jobs?limit=1"
TARGET_ADDED_P50_MS = 2.0
TARGET_THROUGHPUT_RATIO = 0.70
PASSWORD = "bench-password-" + uuid.uuid4().hex[:8]


def load_launch():
    spec = importlib.util.spec_from_file_location("bio_local_launch", ROOT / "deploy" / "local" / "launch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bio_local_launch"] = module
    spec.loader.exec_module(module)
    return module


# -- environment -----------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        nproc: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    return {"nproc": nproc, "cpu_count": os.cpu_count(), "cpu_model": cpu_model or platform.processor() or "unknown",
            "memory_gib": mem_gib, "python": platform.python_version(), "platform": platform.platform()}


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


# -- the stack ---------------------------------------------------------------------------------------------
def create_database(admin_url: str) -> str:
    import psycopg

    name = f"bio_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_redis_db(base_url: str) -> str:
    import redis

    for index in range(15, 0, -1):  # the test fixtures take 1..14 at random; start from the top
        url = f"{base_url.rstrip('/')}/{index}"
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        try:
            if client.dbsize() == 0:
                return url
        finally:
            client.close()
    raise RuntimeError(f"no empty Redis database index at {base_url}")


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()


def prepare_account(gateway_url: str) -> dict[str, str]:
    import httpx

    email = f"bench-{uuid.uuid4().hex[:8]}@example.org"
    with httpx.Client(base_url=gateway_url, timeout=30) as http:
        r = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        account_id = r.json()["id"]
        r = http.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})
        r.raise_for_status()
        token = r.json()["access_token"]
        r = http.post("/api/v1/auth/api-keys", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"})
        r.raise_for_status()
        return {"account_id": account_id, "access_token": token, "api_key": r.json()["key"]}


def check_ok(url: str, headers: dict[str, str]) -> None:
    import httpx

    r = httpx.get(url, headers=headers, timeout=10)
    if r.status_code != 200:
        raise RuntimeError(f"GET {url} answered {r.status_code}: {r.text[:300]}")


# -- report ------------------------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_markdown(report: dict[str, Any]) -> str:
    m, c, res, runs = report["machine"], report["config"], report["results"], report["runs"]
    mark = {True: "met", False: "NOT met"}
    rows = ["| run | connections | target | req/s | p50 ms | p90 ms | p99 ms | mean ms | errors "
            "| gateway CPU ms/req | service CPU ms/req |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for phase, run in runs.items():
        for target, label in (("direct", "direct to the service"), ("gateway", "through the gateway")):
            r = run[target]
            rows.append(f"| {phase} | {run['connections']} | {label} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                        f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['mean_ms']:.2f} | {r['errors']} | "
                        f"{_fmt(r.get('gateway_cpu_ms_per_request'))} | {_fmt(r.get('service_cpu_ms_per_request'))} |")
    generator = c["generator"] + (f" ({c['threads']} thread(s))" if c["generator"] == "wrk" else "")
    lines = [
        "# Gateway overhead",
        "",
        f"`GET {c['path']}`: through the gateway with an {c['auth']} credential (authentication, Redis rate "
        "limit, identity signing, proxy), and straight to the fingerprint service with the signed identity "
        f"header the gateway would send. Each run: {c['warmup_s']:g} s warm-up, then {c['duration_s']:g} s "
        f"measured; load generator: {generator}. The *latency* run uses {c['latency_connections']} connection(s) "
        f"(no queueing: what one request pays), the *throughput* run {c['connections']} connections.",
        "",
        *rows,
        "",
        f"- added latency at p50 (latency run): **{res['added_p50_ms']:.2f} ms** "
        f"(target < {TARGET_ADDED_P50_MS:g} ms: {mark[res['meets_latency_target']]}); at p99: "
        f"{res['added_p99_ms']:.2f} ms",
        f"- added latency under load ({c['connections']} connections): p50 {res['added_p50_ms_under_load']:.2f} ms, "
        f"p99 {res['added_p99_ms_under_load']:.2f} ms",
        f"- throughput kept through the gateway: **{res['throughput_ratio'] * 100:.1f}%** of direct "
        f"(target >= {TARGET_THROUGHPUT_RATIO * 100:.0f}%: {mark[res['meets_throughput_target']]})",
        f"- CPU the gateway process spends per proxied request: {_fmt(res['gateway_cpu_ms_per_request'])} ms "
        f"under load ({_fmt(res['gateway_cpu_ms_per_request_unloaded'])} ms in the latency run); the service "
        f"spends {_fmt(res['service_cpu_ms_per_request'])} ms per request when called directly under load",
        "",
        "The CPU columns come from /proc (user + system time of each server process during the measured "
        "seconds, divided by the requests served); the gateway's column in the direct rows is its idle cost.",
        "",
        f"Machine: {m['nproc']} CPU(s) available ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Python {m['python']}, "
        f"{m['platform']}. The load generator, the gateway, the service, PostgreSQL and Redis all share these "
        "CPUs: through the gateway a second Python process competes with the service for them, so on a small "
        "machine the throughput ratio measures CPU sharing as much as the gateway's own cost per request.",
        "",
    ]
    if c["generator"] != "wrk":
        lines += ["The Python load generator needs far more CPU than wrk: compare direct and gateway with each "
                  "other, not with wrk results.", ""]
    lines += [f"Run at {report['started_at']}. Numbers vary from run to run; a benchmark never fails the build.", ""]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", default="reports/gateway_overhead",
                        help="path prefix of the report (.md and .json are added)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measurement per target")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per target (discarded)")
    parser.add_argument("--connections", type=int, default=16, help="connections of the throughput run")
    parser.add_argument("--latency-connections", type=int, default=1, help="connections of the latency run")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get to install wrk")
    parser.add_argument("--auth", choices=["api-key", "jwt"], default="api-key", help="credential at the gateway")
    parser.add_argument("--pg-admin-url", default=os.environ.get("BIO_BENCH_PG_ADMIN_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("BIO_BENCH_REDIS_URL", "redis://127.0.0.1:6379"),
                        help="Redis server; an empty database index on it is used and flushed afterwards")
    return parser.parse_args(argv)


def pick_generator(args: argparse.Namespace) -> tuple[str, Any] | None:
    """(generator, wrk binary or None); None when wrk was demanded but is missing."""
    if args.generator not in ("auto", "wrk"):
        return args.generator, None
    wrk = ensure_wrk(allow_install=not args.no_install)
    if wrk is None and args.generator == "wrk":
        return None
    return ("wrk" if wrk else "python"), wrk


def run_targets(args: argparse.Namespace, launch: Any, generator: str, wrk: Any, workdir: Path,
                database_url: str, redis_url: str) -> dict[str, dict[str, Any]]:
    """Start the gateway and the fingerprint API, then measure both targets in both phases."""
    from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity

    var_dir = workdir / "var"
    base = launch.free_port_base(3)
    print(f"starting gateway + fingerprint API on ports {base}, {base + 1} "
          f"(database {database_url.rsplit('/', 1)[1]}, redis {redis_url}) ...", flush=True)
    info = launch.up({"BIO_DATABASE_URL": database_url, "BIO_REDIS_URL": redis_url, "BIO_ENV": "development",
                      "BIO_GATEWAY_RATE_LIMIT_API": "1000000/minute"},
                     var_dir=var_dir, port_base=base, metrics_port_base=0, services=["fingerprint"],
                     workers=False, quiet=True)
    creds = prepare_account(info["gateway_url"])
    ttl = int(args.warmup + args.duration) + 600
    identity = sign_identity(Identity(creds["account_id"], "user"), info["internal_secret"], ttl_s=ttl)
    direct_url = f"{info['services']['fingerprint']}{PATH}"
    gateway_url = f"{info['gateway_url']}{PATH}"
    direct_headers = {IDENTITY_HEADER: identity}
    gateway_headers = ({"X-API-Key": creds["api_key"]} if args.auth == "api-key"
                       else {"Authorization": f"Bearer {creds['access_token']}"})
    check_ok(direct_url, direct_headers)
    check_ok(gateway_url, gateway_headers)

    print(f"load generator: {generator}; {args.warmup:g} s warm-up + {args.duration:g} s per run", flush=True)
    pids = {"gateway": info["processes"]["gateway"]["pid"], "service": info["processes"]["fingerprint"]["pid"]}
    runs: dict[str, dict[str, Any]] = {}
    for phase, connections in (("latency", args.latency_connections), ("throughput", args.connections)):
        runs[phase] = {"connections": connections}
        for target, url, headers in (("direct", direct_url, direct_headers),
                                     ("gateway", gateway_url, gateway_headers)):
            r = measure(generator, wrk, url, headers, connections, args, workdir, pids)
            runs[phase][target] = r
            print(f"  {phase:<10} {target:<7} c={connections:<3} {r['rps']:7.0f} req/s  p50 {r['p50_ms']:7.2f} ms  "
                  f"p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}  CPU ms/request: gateway "
                  f"{r['gateway_cpu_ms_per_request']}, service {r['service_cpu_ms_per_request']}", flush=True)
    return runs


def clean_up(args: argparse.Namespace, launch: Any, workdir: Path, database_url: str | None,
             redis_url: str | None) -> None:
    launch.down(workdir / "var", quiet=True)
    if database_url:
        try:
            drop_database(args.pg_admin_url, database_url)
        except Exception as exc:
            print(f"warning: could not drop {database_url}: {exc}", file=sys.stderr)
    if redis_url:
        try:
            flush_redis(redis_url)
        except Exception as exc:
            print(f"warning: could not flush {redis_url}: {exc}", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)


def build_report(args: argparse.Namespace, generator: str, started_at: str,
                 runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    lat, thr = runs["latency"], runs["throughput"]
    direct, gateway = thr["direct"], thr["gateway"]
    ratio = gateway["rps"] / direct["rps"] if direct["rps"] else 0.0
    added_p50 = lat["gateway"]["p50_ms"] - lat["direct"]["p50_ms"]
    return {
        "benchmark": "gateway_overhead",
        "started_at": started_at,
        "config": {"path": PATH, "auth": args.auth, "generator": generator, "connections": args.connections,
                   "latency_connections": args.latency_connections,
                   "threads": args.threads if generator == "wrk" else None, "duration_s": args.duration,
                   "warmup_s": args.warmup, "rate_limit_api": "1000000/minute"},
        # the throughput run (same connections for both targets); "runs" holds both runs
        "direct": direct,
        "gateway": gateway,
        "runs": runs,
        "results": {
            "added_p50_ms": round(added_p50, 3),
            "added_p99_ms": round(lat["gateway"]["p99_ms"] - lat["direct"]["p99_ms"], 3),
            "added_p50_ms_under_load": round(gateway["p50_ms"] - direct["p50_ms"], 3),
            "added_p99_ms_under_load": round(gateway["p99_ms"] - direct["p99_ms"], 3),
            "throughput_ratio": round(ratio, 4),
            "meets_latency_target": added_p50 < TARGET_ADDED_P50_MS,
            "meets_throughput_target": ratio >= TARGET_THROUGHPUT_RATIO,
            "gateway_cpu_ms_per_request": gateway.get("gateway_cpu_ms_per_request"),
            "gateway_cpu_ms_per_request_unloaded": lat["gateway"].get("gateway_cpu_ms_per_request"),
            "service_cpu_ms_per_request": direct.get("service_cpu_ms_per_request"),
        },
        "targets": {"added_p50_ms_below": TARGET_ADDED_P50_MS, "throughput_ratio_at_least": TARGET_THROUGHPUT_RATIO},
        "machine": machine_info(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    launch = load_launch()
    picked = pick_generator(args)
    if picked is None:
        print("error: --generator wrk but wrk is not available", file=sys.stderr)
        return 1
    generator, wrk = picked

    out = Path(args.out)
    if not out.is_absolute():
        out = ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bio-bench-"))
    var_dir = workdir / "var"
    database_url = redis_url = None
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        launch.check_postgres(args.pg_admin_url, create=False)
        launch.check_redis(f"{args.redis_url.rstrip('/')}/0")
        database_url = create_database(args.pg_admin_url)
        redis_url = empty_redis_db(args.redis_url)
        runs = run_targets(args, launch, generator, wrk, workdir, database_url, redis_url)
    except Exception as exc:
        print(f"error: benchmark could not run: {exc}", file=sys.stderr)
        for log in sorted((var_dir / "log").glob("*.log")) if (var_dir / "log").is_dir() else []:
            print(f"--- {log.name}:\n{launch.tail(log, 15)}", file=sys.stderr)
        return 1
    finally:
        clean_up(args, launch, workdir, database_url, redis_url)

    report = build_report(args, generator, started_at, runs)
    markdown = render_markdown(report)
    md_path, json_path = Path(f"{out}.md"), Path(f"{out}.json")
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(markdown)
    print()
    print(markdown)
    print(f"written: {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
