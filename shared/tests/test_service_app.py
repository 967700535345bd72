"""The service shell: bio_shared.runtime + app + uploads (+ services, cli) working together.

A throw-away service ("shared_apptest") is built with build_runtime/create_service_app on SQLite in the
in-process jobs mode, with the normalisation job every service offers, and driven through HTTP.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase

import bio_shared.app as app_module
from bio_shared.app import MULTIPART_OVERHEAD, create_service_app, jobs_router, probe_dependencies
from bio_shared.db import dispose_engines, get_engine
from bio_shared.identity import IDENTITY_HEADER, Identity
from bio_shared.jobs import CeleryDispatcher, JobMixin, ThreadDispatcher
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.services import ServiceSpec, discover_services
from bio_shared.settings import CommonSettings
from bio_shared.uploads import normalize_router, register_normalize_job
from bio_testing.shared import identity_headers

pytestmark = pytest.mark.filterwarnings("ignore::celery.exceptions.DuplicateTaskNameWarning")

NAME, PREFIX = "shared_apptest", "/api/v1/shared-apptest"


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "shared_apptest_jobs"


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def invert(pixels: np.ndarray) -> np.ndarray:
    return 255 - pixels


@pytest.fixture(autouse=True)
def _quiet_logging_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # create_service_app configures the root logger once per process; keep pytest's logging intact.
    monkeypatch.setattr(app_module, "configure_logging", lambda *a, **k: None)


@pytest.fixture
def make_rt(var_dir: Path, secret: str) -> Iterator[Callable[..., ServiceRuntime]]:
    made: list[ServiceRuntime] = []

    def make(transform: Callable[[np.ndarray], np.ndarray] = invert, **over: Any) -> ServiceRuntime:
        values: dict[str, Any] = dict(var_dir=var_dir, env="test", jobs_mode="inprocess", internal_secret=secret,
                                      max_upload_bytes=300_000, job_reap_interval_s=3600, embedded_job_threads=2)
        values.update(over)
        settings = CommonSettings(**values)
        Base.metadata.create_all(get_engine(settings.database_url))
        rt = build_runtime(NAME, "bio_fingerprint", PREFIX, settings, Job)
        register_normalize_job(rt, transform, "gray")
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()
    dispose_engines()


def make_app(rt: ServiceRuntime) -> FastAPI:
    return create_service_app(rt, title="Test service", description="bio_shared shell under test",
                              routers=[normalize_router(rt, "inverted")])


@pytest.fixture
def rt(make_rt: Callable[..., ServiceRuntime]) -> ServiceRuntime:
    return make_rt()


@pytest.fixture
def client(rt: ServiceRuntime) -> Iterator[TestClient]:
    with TestClient(make_app(rt)) as c:
        yield c


@pytest.fixture
def alice(secret: str) -> dict[str, str]:
    return identity_headers(secret, "acct-alice")


@pytest.fixture
def bob(secret: str) -> dict[str, str]:
    return identity_headers(secret, "acct-bob")


def wait_done(client: TestClient, url: str, headers: dict[str, str], timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url, headers=headers).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.03)
    raise AssertionError(f"job at {url} did not finish")


def blob_files(rt: ServiceRuntime) -> list[Path]:
    return sorted(p for p in Path(rt.blobs.root).rglob("*") if p.is_file())


def job_count(rt: ServiceRuntime) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(Job))


# -- probes and shell --------------------------------------------------------------------------------------


def test_healthz_readyz_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "service": NAME}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "checks": {"database": "ok"}}
    client.get(f"{PREFIX}/jobs/abc", headers={})
    text = client.get("/metrics").text
    assert f'route="{PREFIX}/jobs/{{job_id}}"' in text
    assert f'service="{NAME}"' in text


def test_readyz_reports_unreachable_redis(make_rt: Callable[..., ServiceRuntime]) -> None:
    rt = make_rt(redis_url="redis://127.0.0.1:1/0")
    with TestClient(make_app(rt)) as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"].startswith("error")


def test_probe_dependencies(make_rt: Callable[..., ServiceRuntime], var_dir: Path, secret: str) -> None:
    assert probe_dependencies(make_rt().settings) == {"database": "ok"}
    bad = CommonSettings(var_dir=var_dir, internal_secret=secret, database_url="postgresql://nobody@127.0.0.1:1/none")
    try:
        checks = probe_dependencies(bad)
    finally:
        dispose_engines()
    assert checks["database"].startswith("error: ")
    assert "nobody" not in checks["database"]  # the class name only, no connection details


def test_request_id_and_openapi(client: TestClient) -> None:
    r = client.get("/healthz", headers={"X-Request-ID": "probe-1"})
    assert r.headers["x-request-id"] == "probe-1"
    spec = client.get(f"{PREFIX}/openapi.json").json()
    assert f"{PREFIX}/jobs/normalize" in spec["paths"]
    assert client.get(f"{PREFIX}/docs").status_code == 200


def test_in_process_mode_uses_threads(client: TestClient, rt: ServiceRuntime) -> None:
    assert isinstance(rt.jobs.dispatcher, ThreadDispatcher)


def test_build_runtime_dispatcher_by_mode(make_rt: Callable[..., ServiceRuntime]) -> None:
    rt = make_rt(jobs_mode="celery", redis_url="redis://127.0.0.1:6379/0")
    assert isinstance(rt.jobs.dispatcher, CeleryDispatcher)
    assert rt.jobs.dispatcher.queue_name == NAME
    rt = make_rt(jobs_mode="auto", redis_url="")
    assert isinstance(rt.jobs.dispatcher, ThreadDispatcher)
    with pytest.raises(ValueError, match="REDIS"):
        make_rt(jobs_mode="celery", redis_url="")


def test_build_runtime_wiring(rt: ServiceRuntime, var_dir: Path) -> None:
    assert rt.name == NAME and rt.prefix == PREFIX and rt.package == "bio_fingerprint"
    assert rt.jobs.status_url("x") == f"{PREFIX}/jobs/x"
    assert Path(rt.blobs.root) == (var_dir / "blobs" / rt.name).resolve()
    assert rt.celery.conf.task_default_queue == NAME
    assert rt.run_job.name == f"bio_{NAME}.run_job"
    assert "normalize" in rt.jobs.handlers
    assert rt.options["normalize"] == "gray"


# -- identity on every job route ---------------------------------------------------------------------------


def test_job_routes_require_identity(client: TestClient, secret: str) -> None:
    for method, path in (("get", f"{PREFIX}/jobs"), ("get", f"{PREFIX}/jobs/abc"),
                         ("get", f"{PREFIX}/jobs/abc/output"), ("post", f"{PREFIX}/jobs/normalize")):
        r = getattr(client, method)(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "missing_identity"
        r = getattr(client, method)(path, headers={IDENTITY_HEADER: "forged"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_identity"
        r = getattr(client, method)(path, headers=identity_headers("not-the-secret-" + "z" * 30))
        assert r.status_code == 401


# -- the normalisation job, end to end ---------------------------------------------------------------------


def test_normalize_round_trip(client: TestClient, rt: ServiceRuntime, alice: dict[str, str]) -> None:
    arr = np.random.default_rng(3).integers(0, 256, (40, 50), dtype=np.uint8)
    r = client.post(f"{PREFIX}/jobs/normalize", headers={**alice, "X-Request-ID": "up-1"},
                    files={"file": ("print.png", png_bytes(arr), "image/png")})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] in ("pending", "running", "succeeded")
    assert body["kind"] == "normalize"
    assert r.headers["location"] == body["status_url"] == f"{PREFIX}/jobs/{body['id']}"
    done = wait_done(client, body["status_url"], alice)
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert result["width"] == 50 and result["height"] == 40 and result["channels"] == 1
    assert result["source_format"] == "PNG" and result["source_mode"] == "L"
    assert result["filename"] == "print.png"
    assert result["output_url"] == f"{body['status_url']}/output"
    assert "output_key" not in result and "input_key" not in result  # storage layout stays private
    out = client.get(result["output_url"], headers=alice)
    assert out.status_code == 200 and out.headers["content-type"] == "image/png"
    assert hashlib.sha256(out.content).hexdigest() == result["sha256"]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(out.content))), 255 - arr)
    # The upload is gone, only the output remains, under the caller's account.
    files = blob_files(rt)
    assert [p.relative_to(rt.blobs.root).as_posix() for p in files] == [
        f"acct-alice/{NAME}-normalized/{body['id']}.png"]
    with rt.sessions() as s:
        assert s.get(Job, body["id"]).request_id == "up-1"
    page = client.get(f"{PREFIX}/jobs", headers=alice).json()
    assert [j["id"] for j in page["items"]] == [body["id"]] and page["total"] == 1


def test_other_account_sees_nothing(client: TestClient, alice: dict[str, str], bob: dict[str, str]) -> None:
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice,
                    files={"file": ("a.png", png_bytes(np.zeros((20, 20), np.uint8)), "image/png")})
    url = r.json()["status_url"]
    wait_done(client, url, alice)
    r = client.get(url, headers=bob)
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    assert client.get(f"{url}/output", headers=bob).status_code == 404
    assert client.get(f"{PREFIX}/jobs", headers=bob).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


@pytest.mark.parametrize("payload,status,code", [
    (b"definitely not an image at all" * 3, 415, "not_an_image"),
    (b"", 422, "empty_file"),
    (b"\x00" * 300_001, 413, "payload_too_large"),
    (None, 422, "image_too_small"),
    ("pdf", 415, "not_an_image"),
])
def test_bad_uploads_rejected_before_anything_is_stored(client: TestClient, rt: ServiceRuntime,
                                                        alice: dict[str, str], payload, status: int,
                                                        code: str) -> None:
    if payload is None:
        payload = png_bytes(np.zeros((8, 100), np.uint8))
    elif payload == "pdf":
        buf = io.BytesIO()
        Image.new("RGB", (64, 64)).save(buf, format="PDF")
        payload = buf.getvalue()
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice, files={"file": ("x", payload, "image/png")})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert job_count(rt) == 0
    assert blob_files(rt) == []


def test_truncated_upload_rejected(client: TestClient, rt: ServiceRuntime, alice: dict[str, str]) -> None:
    data = png_bytes(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8))
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice,
                    files={"file": ("x.png", data[: len(data) // 2], "image/png")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "corrupt_image"
    assert job_count(rt) == 0 and blob_files(rt) == []


def test_missing_file_field(client: TestClient, alice: dict[str, str]) -> None:
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice, data={"other": "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_queue_down_keeps_the_job_and_its_upload(client: TestClient, rt: ServiceRuntime,
                                                 alice: dict[str, str]) -> None:
    class Down:
        def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
            raise ConnectionError("redis down")

    rt.jobs.dispatcher = Down()
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice,
                    files={"file": ("a.png", png_bytes(np.zeros((20, 20), np.uint8)), "image/png")})
    assert r.status_code == 202  # stored durably; the reaper dispatches it once the broker is back
    assert len(blob_files(rt)) == 1  # the upload is kept for that run
    items = client.get(f"{PREFIX}/jobs", headers=alice).json()["items"]
    assert len(items) == 1 and items[0]["status"] == "pending"


def test_output_before_success_is_409(make_rt: Callable[..., ServiceRuntime], alice: dict[str, str]) -> None:
    gate = threading.Event()

    def slow(pixels: np.ndarray) -> np.ndarray:
        gate.wait(10)
        return pixels

    rt = make_rt(transform=slow)
    with TestClient(make_app(rt)) as c:
        r = c.post(f"{PREFIX}/jobs/normalize", headers=alice,
                   files={"file": ("a.png", png_bytes(np.zeros((20, 20), np.uint8)), "image/png")})
        url = r.json()["status_url"]
        out = c.get(f"{url}/output", headers=alice)
        assert out.status_code == 409
        assert out.json()["error"]["code"] == "job_not_finished"
        gate.set()
        assert wait_done(c, url, alice)["status"] == "succeeded"
        assert c.get(f"{url}/output", headers=alice).status_code == 200


def test_failed_job_reports_error(make_rt: Callable[..., ServiceRuntime], alice: dict[str, str]) -> None:
    def broken(pixels: np.ndarray) -> np.ndarray:
        raise RuntimeError("engine exploded")

    rt = make_rt(transform=broken)
    with TestClient(make_app(rt)) as c:
        r = c.post(f"{PREFIX}/jobs/normalize", headers=alice,
                   files={"file": ("a.png", png_bytes(np.zeros((20, 20), np.uint8)), "image/png")})
        done = wait_done(c, r.json()["status_url"], alice)
        assert done["status"] == "failed" and done["error"]["code"] == "internal_error"
        assert c.get(f"{r.json()['status_url']}/output", headers=alice).status_code == 409


def test_body_limit_by_content_length(client: TestClient, rt: ServiceRuntime, alice: dict[str, str]) -> None:
    limit = rt.settings.max_upload_bytes + MULTIPART_OVERHEAD
    big = b"\x00" * (limit + 1)
    r = client.post(f"{PREFIX}/jobs/normalize", headers={**alice, "content-type": "application/octet-stream"},
                    content=big)
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["code"] == "payload_too_large" and err["details"] == {"limit_bytes": limit}
    assert r.headers["x-request-id"]  # still inside the request-id middleware
    assert job_count(rt) == 0 and blob_files(rt) == []


def test_body_limit_on_streamed_body(client: TestClient, rt: ServiceRuntime, alice: dict[str, str]) -> None:
    limit = rt.settings.max_upload_bytes + MULTIPART_OVERHEAD

    def chunks() -> Iterator[bytes]:  # no Content-Length: the middleware has to count
        sent = 0
        while sent <= limit:
            yield b"\x00" * 65536
            sent += 65536

    r = client.post(f"{PREFIX}/jobs/normalize", headers={**alice, "content-type": "multipart/form-data; boundary=x"},
                    content=chunks())
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert job_count(rt) == 0 and blob_files(rt) == []


def test_upload_just_over_file_limit_but_under_body_limit(client: TestClient, rt: ServiceRuntime,
                                                          alice: dict[str, str]) -> None:
    data = b"\x00" * (rt.settings.max_upload_bytes + 1)
    r = client.post(f"{PREFIX}/jobs/normalize", headers=alice, files={"file": ("x.png", data, "image/png")})
    assert r.status_code == 413 and r.json()["error"]["details"] == {"limit_bytes": rt.settings.max_upload_bytes}


def test_normalize_retry_reuses_output_of_a_dead_attempt(rt: ServiceRuntime) -> None:
    """The job is idempotent: an attempt that wrote its output and then died is not redone."""
    png = png_bytes(np.full((20, 20), 9, np.uint8))
    rt.jobs.dispatcher = type("Sink", (), {"dispatch": lambda self, *a, **k: None})()
    job = rt.jobs.submit(Identity("acct-alice", "user"), "normalize",
                         {"input_key": "acct-alice/uploads/gone.bin", "filename": "f.png"})
    rt.blobs.put(f"acct-alice/{NAME}-normalized/{job.id}.png", png)
    assert rt.jobs.execute(job.id).state == "ran"
    done = rt.jobs.get(job.id, Identity("acct-alice", "user"))
    assert done.status == "succeeded"
    assert done.result["sha256"] == hashlib.sha256(png).hexdigest()
    assert (done.result["width"], done.result["height"], done.result["channels"]) == (20, 20, 1)


def test_normalize_without_input_or_output_fails_410(rt: ServiceRuntime) -> None:
    rt.jobs.dispatcher = type("Sink", (), {"dispatch": lambda self, *a, **k: None})()
    job = rt.jobs.submit(Identity("acct-alice", "user"), "normalize", {"input_key": "acct-alice/uploads/gone.bin"})
    rt.jobs.execute(job.id)
    done = rt.jobs.get(job.id, Identity("acct-alice", "user"))
    assert done.status == "failed"
    assert done.error["code"] == "input_missing"


def test_normalize_of_undecodable_stored_input_fails_and_cleans(rt: ServiceRuntime) -> None:
    rt.jobs.dispatcher = type("Sink", (), {"dispatch": lambda self, *a, **k: None})()
    key = rt.blobs.put("acct-alice/uploads/bad.bin", b"not an image at all, sorry")
    job = rt.jobs.submit(Identity("acct-alice", "user"), "normalize", {"input_key": key})
    rt.jobs.execute(job.id)
    done = rt.jobs.get(job.id, Identity("acct-alice", "user"))
    assert done.status == "failed" and done.error["code"] == "not_an_image"
    assert not rt.blobs.exists(key)


def test_list_pagination_validation(client: TestClient, alice: dict[str, str]) -> None:
    for params in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"limit": "x"}, {"offset": 2**63}):
        r = client.get(f"{PREFIX}/jobs", headers=alice, params=params)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


def test_startup_runs_jobs_left_pending(make_rt: Callable[..., ServiceRuntime], alice: dict[str, str]) -> None:
    """A job accepted just before the process stopped is picked up when the embedded service starts again."""
    before = make_rt()

    class Lost:
        def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
            pass  # accepted, then the process died before a thread ran it

    before.jobs.dispatcher = Lost()
    key = before.blobs.put(before.blobs.new_key("acct-alice", "uploads", "png"),
                           png_bytes(np.zeros((20, 20), np.uint8)))
    job = before.jobs.submit(Identity("acct-alice", "user"), "normalize", {"input_key": key})
    after = make_rt()  # the restarted process: same database and blobs, fresh runtime
    with TestClient(make_app(after)) as c:
        done = wait_done(c, f"{PREFIX}/jobs/{job.id}", alice)
    assert done["status"] == "succeeded"


def test_jobs_router_standalone(rt: ServiceRuntime, alice: dict[str, str]) -> None:
    app = FastAPI()
    app.include_router(jobs_router(rt))
    c = TestClient(app)
    assert c.get(f"{PREFIX}/jobs", headers=alice).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}


# -- services and cli --------------------------------------------------------------------------------------


class FakeEntryPoint:
    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec

    def load(self) -> ServiceSpec:
        return self.spec


def fake_spec(name: str, prefix: str, settings_cls: type = CommonSettings) -> ServiceSpec:
    return ServiceSpec(name=name, prefix=prefix, package="bio_fingerprint", create_app=lambda s=None: FastAPI(),
                       settings_cls=settings_cls)


def test_service_spec(var_dir: Path) -> None:
    spec = fake_spec("face_verify", "/api/v1/face-verify")
    assert spec.version_table == "alembic_version_face_verify"
    s = spec.settings(var_dir=var_dir, log_level="DEBUG")
    assert isinstance(s, CommonSettings) and s.log_level == "DEBUG"


def test_discover_services_sorted_by_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    import bio_shared.services as services_module

    specs = [fake_spec("zeta", "/api/v1/a"), fake_spec("alpha", "/api/v1/z"), fake_spec("mid", "/api/v1/m")]
    groups: list[str] = []

    def fake_entry_points(group: str) -> list[FakeEntryPoint]:
        groups.append(group)
        return [FakeEntryPoint(s) for s in specs]

    monkeypatch.setattr(services_module, "entry_points", fake_entry_points)
    found = discover_services()
    assert groups == ["bio.services"]
    assert list(found) == ["zeta", "mid", "alpha"]
    assert found["mid"] is specs[2]


def test_discover_installed_services_are_specs() -> None:
    for name, spec in discover_services().items():
        assert isinstance(spec, ServiceSpec) and spec.name == name and spec.prefix.startswith("/")


class TestCli:
    @pytest.fixture
    def spec(self, var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceSpec:
        monkeypatch.setenv("BIO_VAR_DIR", str(var_dir))
        return fake_spec("fingerprint", "/api/v1/fingerprint")

    def test_migrate(self, spec: ServiceSpec, var_dir: Path, capsys: pytest.CaptureFixture) -> None:
        from sqlalchemy import inspect

        from bio_shared.cli import service_cli

        try:
            service_cli(spec)(["migrate"])
            assert capsys.readouterr().out.strip() == "fingerprint: migrated"
            url = spec.settings().database_url
            assert "fingerprint_jobs" in inspect(get_engine(url)).get_table_names()
        finally:
            dispose_engines()

    def test_worker_execs_celery(self, spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch) -> None:
        import os
        import sys

        from bio_shared.cli import service_cli

        calls: list[tuple] = []
        monkeypatch.setattr(os, "execvp", lambda file, args: calls.append((file, args)))
        service_cli(spec)(["worker", "--concurrency", "3", "--pool", "solo", "--loglevel", "DEBUG"])
        file, args = calls[0]
        assert file == sys.executable
        assert args[:7] == [sys.executable, "-m", "celery", "-A", "bio_fingerprint.tasks", "worker", "-Q"]
        assert args[7] == "fingerprint"
        joined = " ".join(args)
        assert "--pool solo" in joined and "--concurrency 3" in joined and "--hostname fingerprint@%h" in joined
        assert args[-2:] == ["--loglevel", "DEBUG"]  # unknown options pass through to Celery

    def test_serve(self, spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch) -> None:
        import uvicorn

        from bio_shared.cli import service_cli

        runs: list[dict] = []
        monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append({"app": app, **kw}))
        service_cli(spec)(["serve", "--port", "8123"])
        assert runs[0]["port"] == 8123 and runs[0]["host"] == "127.0.0.1"
        assert isinstance(runs[0]["app"], FastAPI)
        assert runs[0]["access_log"] is False

    def test_extra_command_and_usage_errors(self, spec: ServiceSpec) -> None:
        from bio_shared.cli import service_cli

        seen: list[Any] = []

        def extra(sub: argparse._SubParsersAction) -> None:
            p = sub.add_parser("evaluate")
            p.add_argument("--n", type=int, default=1)
            p.set_defaults(handler=lambda args, settings: seen.append((args.n, type(settings).__name__)))

        main = service_cli(spec, extra)
        main(["evaluate", "--n", "4"])
        assert seen == [(4, "CommonSettings")]
        with pytest.raises(SystemExit) as info:
            main([])
        assert info.value.code == 2
        with pytest.raises(SystemExit):
            main(["no-such-command"])
