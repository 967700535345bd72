"""bio_shared.celery_app: the per-service Celery app, its one task, the dispatcher and worker hooks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.utils.dispatch import Signal
from sqlalchemy.orm import DeclarativeBase

import bio_shared.celery_app as celery_app_module
import bio_shared.metrics as metrics_module
from bio_shared.celery_app import install_worker_hooks, make_celery, register_job_task
from bio_shared.db import dispose_engines, get_engine, session_factory
from bio_shared.identity import Identity
from bio_shared.jobs import CeleryDispatcher, JobContext, JobMixin, JobQueue, TransientJobError
from bio_shared.logging import request_id_var
from bio_shared.settings import CommonSettings


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "shared_celery_jobs"


ALICE = Identity("acct-a", "user")


class Sink:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
        self.sent.append(job_id)


def settings(var_dir: Path, **over: Any) -> CommonSettings:
    values: dict[str, Any] = dict(var_dir=var_dir, internal_secret="s" * 40)
    values.update(over)
    return CommonSettings(**values)


@pytest.fixture
def queue(tmp_path: Path, var_dir: Path) -> Iterator[JobQueue]:
    url = f"sqlite:///{(tmp_path / 'celery-jobs.db').as_posix()}"
    Base.metadata.create_all(get_engine(url))
    q = JobQueue("testsvc", Job, session_factory(url), settings(var_dir, database_url=url), "/api/v1/testsvc/jobs")
    q.dispatcher = Sink()
    yield q
    dispose_engines()


# -- make_celery -------------------------------------------------------------------------------------------


def test_make_celery_config(var_dir: Path) -> None:
    s = settings(var_dir, redis_url="redis://127.0.0.1:6379/5", job_time_limit_s=120,
                 celery_visibility_timeout_s=7200)
    app = make_celery("fingerprint", s)
    c = app.conf
    assert app.main == "bio_fingerprint"
    assert c.task_default_queue == "fingerprint"
    assert c.task_acks_late is True
    assert c.task_reject_on_worker_lost is True
    assert c.worker_prefetch_multiplier == 1
    assert c.task_acks_on_failure_or_timeout is True
    assert c.task_ignore_result is True
    assert c.task_time_limit == 120
    assert c.task_soft_time_limit == 115
    assert c.broker_url == "redis://127.0.0.1:6379/5"
    assert c.broker_transport_options == {"visibility_timeout": 7200}
    assert c.task_serializer == "json" and c.accept_content == ["json"]
    assert c.worker_hijack_root_logger is False
    assert c.enable_utc is True
    # The visibility timeout must exceed the hard time limit, or Redis redelivers running tasks.
    assert c.broker_transport_options["visibility_timeout"] > c.task_time_limit


def test_make_celery_without_redis_uses_memory_broker(var_dir: Path) -> None:
    app = make_celery("face_verify", settings(var_dir, job_time_limit_s=3))
    assert app.conf.broker_url == "memory://"
    assert app.conf.task_default_queue == "face_verify"
    assert app.conf.task_soft_time_limit == 1  # never zero or negative


def test_apps_are_independent(var_dir: Path) -> None:
    from celery import current_app

    a = make_celery("svc_a", settings(var_dir))
    b = make_celery("svc_b", settings(var_dir))
    assert a is not b and a.conf.task_default_queue != b.conf.task_default_queue
    assert current_app.main not in ("bio_svc_a", "bio_svc_b")  # set_as_current=False


# -- the task ----------------------------------------------------------------------------------------------


def test_register_job_task(queue: JobQueue, var_dir: Path) -> None:
    app = make_celery("testsvc", queue.settings)
    task = register_job_task(app, queue)
    assert task.name == "bio_testsvc.run_job"
    assert task.name in app.tasks
    assert task.max_retries == queue.settings.job_max_attempts


def test_task_runs_job_eagerly(queue: JobQueue) -> None:
    app = make_celery("testsvc", queue.settings)
    app.conf.task_always_eager = True
    task = register_job_task(app, queue)
    queue.handler("echo")(lambda ctx: {"n": ctx.params["n"]})
    job = queue.submit(ALICE, "echo", {"n": 5})
    assert task.apply(args=[job.id]).get() == "ran"
    assert queue.get(job.id, ALICE).result == {"n": 5}
    assert task.apply(args=[job.id]).get() == "skipped"  # redelivery of a finished job


def test_task_retries_transient_errors(queue: JobQueue) -> None:
    app = make_celery("testsvc", queue.settings)
    app.conf.task_always_eager = True
    task = register_job_task(app, queue)
    attempts: list[int] = []

    @queue.handler("flaky")
    def flaky(ctx: JobContext) -> dict:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise TransientJobError("later")
        return {"attempt": ctx.attempt}

    job = queue.submit(ALICE, "flaky", {})
    result = task.apply(args=[job.id])
    assert result.get() == "ran"
    assert attempts == [1, 2, 3]
    assert queue.get(job.id, ALICE).status == "succeeded"
def test_job_task_is_registered_only_on_its_own_app(queue: JobQueue, var_dir: Path) -> None:
    service = f"own_{uuid.uuid4().hex[:8]}"
    q = JobQueue(service, Job, queue.sessions, queue.settings, "/x")
    app = make_celery(service, q.settings)
    register_job_task(app, q)
    app.finalize()  # what a worker does on start
    assert f"bio_{service}.run_job" in app.tasks
    other = make_celery(f"other_{uuid.uuid4().hex[:8]}", q.settings)
    other.finalize()
    # Another app (another service in the embedded process, or a second runtime of this service
    # in a test session) must not inherit this queue's task.
    assert f"bio_{service}.run_job" not in other.tasks


# -- CeleryDispatcher --------------------------------------------------------------------------------------


class FakeTask:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def apply_async(self, **kw: Any) -> None:
        self.calls.append(kw)


def test_celery_dispatcher_sends_to_service_queue() -> None:
    task = FakeTask()
    d = CeleryDispatcher(task, "fingerprint")
    d.dispatch("job-1", request_id="rid-1")
    d.dispatch("job-2", countdown=4.0)
    assert task.calls == [
        {"args": ["job-1"], "queue": "fingerprint", "countdown": None, "headers": {"request_id": "rid-1"}},
        {"args": ["job-2"], "queue": "fingerprint", "countdown": 4.0, "headers": {"request_id": None}},
    ]


# -- worker hooks ------------------------------------------------------------------------------------------


@pytest.fixture
def private_signals(monkeypatch: pytest.MonkeyPatch) -> dict[str, Signal]:
    """Fresh signal objects, so firing them here reaches only the hooks installed by this test."""
    sigs = {name: Signal(name=name) for name in ("worker_process_init", "setup_logging", "worker_ready")}
    for name, sig in sigs.items():
        monkeypatch.setattr(celery_app_module.signals, name, sig)
    return sigs


class FakeQueue:
    service = "hooksvc"

    def __init__(self, fail: bool = False) -> None:
        self.reaped = 0
        self.fail = fail

    def reap(self) -> dict[str, int]:
        self.reaped += 1
        if self.fail:
            raise RuntimeError("database still starting")
        return {"requeued": 0, "failed": 0}


def test_worker_hooks(private_signals: dict[str, Signal], monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    disposed: list[bool] = []
    logging_calls: list[tuple] = []
    servers: list[tuple] = []
    monkeypatch.setattr(celery_app_module, "dispose_engines", lambda: disposed.append(True))
    monkeypatch.setattr(celery_app_module, "configure_logging", lambda *a, **k: logging_calls.append(a))
    monkeypatch.setattr(metrics_module, "start_metrics_server", lambda port, addr: servers.append((port, addr)))
    app = make_celery("hooksvc", settings(var_dir))
    q = FakeQueue()
    install_worker_hooks(app, q, log_level="DEBUG")

    private_signals["worker_process_init"].send(sender=None)
    assert disposed == [True]  # no connection pool survives a fork

    private_signals["setup_logging"].send(sender=None)
    assert logging_calls == [("hooksvc-worker", "DEBUG")]

    private_signals["worker_ready"].send(sender=None)
    assert q.reaped == 1 and servers == []  # no metrics port configured

    monkeypatch.setenv("BIO_WORKER_METRICS_PORT", "9123")
    monkeypatch.setenv("BIO_WORKER_METRICS_ADDR", "0.0.0.0")
    private_signals["worker_ready"].send(sender=None)
    assert servers == [(9123, "0.0.0.0")] and q.reaped == 2


def test_worker_ready_survives_reap_failure(private_signals: dict[str, Signal], var_dir: Path) -> None:
    q = FakeQueue(fail=True)
    install_worker_hooks(make_celery("hooksvc", settings(var_dir)), q)
    private_signals["worker_ready"].send(sender=None)  # must not raise
    assert q.reaped == 1


# -- a real worker on Redis --------------------------------------------------------------------------------


@pytest.mark.integration
def test_real_worker_runs_job_with_request_id(redis_url: str, tmp_path: Path, var_dir: Path) -> None:
    from celery.contrib.testing.worker import start_worker

    url = f"sqlite:///{(tmp_path / 'worker-jobs.db').as_posix()}"
    Base.metadata.create_all(get_engine(url))
    s = settings(var_dir, database_url=url, redis_url=redis_url)
    service = f"shared_test_{uuid.uuid4().hex[:8]}"  # unique: see test_second_app_of_a_service_runs_its_own_queue
    q = JobQueue(service, Job, session_factory(url), s, f"/api/v1/{service}/jobs")
    app = make_celery(service, s)
    task = register_job_task(app, q)
    q.dispatcher = CeleryDispatcher(task, service)
    seen: dict[str, Any] = {}

    @q.handler("echo")
    def echo(ctx: JobContext) -> dict:
        seen["rid"] = request_id_var.get()
        return {"p": ctx.params}

    try:
        with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=10):
            token = request_id_var.set("rid-through-celery")
            try:
                job = q.submit(ALICE, "echo", {"v": 1})
            finally:
                request_id_var.reset(token)
            deadline = time.monotonic() + 20
            status = "pending"
            while time.monotonic() < deadline:
                status = q.get(job.id, ALICE).status
                if status in ("succeeded", "failed"):
                    break
                time.sleep(0.05)
        assert status == "succeeded"
        assert q.get(job.id, ALICE).result == {"p": {"v": 1}}
        assert seen["rid"] == "rid-through-celery"
    finally:
        dispose_engines()
