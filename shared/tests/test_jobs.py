"""bio_shared.jobs: submit, execute, retry, reap and read jobs, on SQLite and on PostgreSQL.

The jobs table is a throw-away model declared here; every test runs against both backends (the
PostgreSQL ones are marked ``integration`` and use a fresh database from the root ``pg_url`` fixture).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import DeclarativeBase

from bio_shared.db import dispose_engines, get_engine, session_factory, session_scope, utcnow
from bio_shared.errors import BioError, NotFound, ServiceUnavailable, Unprocessable
from bio_shared.identity import Identity
from bio_shared.jobs import (
    FINAL,
    JobContext,
    JobMixin,
    JobQueue,
    JobStatus,
    Outcome,
    ThreadDispatcher,
    TransientJobError,
    job_to_dict,
    new_id,
)
from bio_shared.logging import request_id_var, service_var
from bio_shared.settings import CommonSettings


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "shared_test_jobs"


ALICE = Identity("acct-alice", "user")
BOB = Identity("acct-bob", "user")


class WorkerKilled(BaseException):
    """Stands for a worker process dying mid-job: nothing in execute() may catch it."""


@dataclass
class RecordingDispatcher:
    """A Dispatcher that only records what it was asked to send."""

    sent: list[tuple[str, float, str | None]] = field(default_factory=list)
    fail: bool = False

    def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
        if self.fail:
            raise ConnectionError("broker unreachable")
        self.sent.append((job_id, countdown, request_id))

    @property
    def ids(self) -> list[str]:
        return [s[0] for s in self.sent]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'jobs.db').as_posix()}"
        dispose_engines()
    else:
        yield request.getfixturevalue("pg_url")


def make_settings(var_dir: Path, url: str, **over: Any) -> CommonSettings:
    values: dict[str, Any] = dict(var_dir=var_dir, database_url=url, env="test", internal_secret="s" * 40,
                                  job_max_attempts=3, job_time_limit_s=30, job_lease_grace_s=5,
                                  job_redispatch_after_s=300)
    values.update(over)
    return CommonSettings(**values)


@pytest.fixture
def make_queue(db_url: str, var_dir: Path) -> Callable[..., JobQueue]:
    Base.metadata.create_all(get_engine(db_url))

    def make(**settings_over: Any) -> JobQueue:
        q = JobQueue("testsvc", Job, session_factory(db_url), make_settings(var_dir, db_url, **settings_over),
                     status_path="/api/v1/testsvc/jobs/")
        q.dispatcher = RecordingDispatcher()
        return q

    return make


@pytest.fixture
def queue(make_queue: Callable[..., JobQueue]) -> JobQueue:
    q = make_queue()

    @q.handler("echo")
    def echo(ctx: JobContext) -> dict[str, Any]:
        return {"echo": ctx.params, "attempt": ctx.attempt, "owner": ctx.owner_id}

    return q


def row(q: JobQueue, job_id: str) -> Job:
    with q.sessions() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def set_columns(q: JobQueue, job_id: str, **values: Any) -> None:
    with session_scope(q.sessions) as s:
        s.execute(update(Job).where(Job.id == job_id).values(**values))


def expire_lease(q: JobQueue, job_id: str) -> None:
    set_columns(q, job_id, lease_expires_at=utcnow() - timedelta(seconds=5))


def kill_worker_during(q: JobQueue, job_id: str) -> None:
    """Run the job with a handler that 'dies' (BaseException): the row stays running with a lease."""
    with pytest.raises(WorkerKilled):
        q.execute(job_id)
    assert row(q, job_id).status == "running"


def aware(dt: datetime | None) -> bool:
    return dt is not None and dt.tzinfo is not None and dt.utcoffset() == timedelta(0)


# -- submit ------------------------------------------------------------------------------------------------


class TestSubmit:
    def test_submit_creates_pending_row_and_dispatches(self, queue: JobQueue) -> None:
        token = request_id_var.set("req-abc")
        try:
            job = queue.submit(ALICE, "echo", {"x": 1, "nested": {"y": [1, 2]}})
        finally:
            request_id_var.reset(token)
        assert len(job.id) == 32
        assert job.status == "pending"
        stored = row(queue, job.id)
        assert stored.status == "pending"
        assert stored.owner_id == ALICE.account_id
        assert stored.kind == "echo"
        assert stored.params == {"x": 1, "nested": {"y": [1, 2]}}
        assert stored.attempts == 0 and stored.progress == 0.0
        assert stored.result is None and stored.error is None
        assert stored.request_id == "req-abc"
        assert aware(stored.created_at)
        assert abs((utcnow() - stored.created_at).total_seconds()) < 10
        assert stored.started_at is None and stored.finished_at is None and stored.lease_expires_at is None
        assert queue.dispatcher.sent == [(job.id, 0.0, "req-abc")]

    def test_submit_unknown_kind(self, queue: JobQueue) -> None:
        with pytest.raises(ValueError, match="no handler"):
            queue.submit(ALICE, "nope", {})
        assert queue.list(ALICE) == []
        assert queue.dispatcher.sent == []

    def test_dispatch_failure_keeps_the_job_and_the_reaper_sends_it_later(self, queue: JobQueue) -> None:
        queue.dispatcher.fail = True
        job = queue.submit(ALICE, "echo", {"v": 1})  # the broker is down: accepted all the same
        stored = queue.list(ALICE)
        assert [j.id for j in stored] == [job.id] and stored[0].status == "pending"
        assert stored[0].lease_expires_at is not None  # when to try again
        assert queue.reap() == {"requeued": 0, "failed": 0}  # not before its retry time
        queue.dispatcher.fail = False
        queue.settings.job_dispatch_retry_s = 0
        with queue.sessions() as s, s.begin():
            s.execute(update(queue.model).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        assert queue.reap() == {"requeued": 1, "failed": 0}
        assert [sent[0] for sent in queue.dispatcher.sent] == [job.id]
        queue.execute(job.id)
        assert queue.get(job.id, ALICE).status == "succeeded"

    def test_no_dispatcher_configured(self, queue: JobQueue) -> None:
        queue.dispatcher = None
        with pytest.raises(ServiceUnavailable):
            queue.submit(ALICE, "echo", {})
        assert queue.list(ALICE) == []

    def test_status_url(self, queue: JobQueue) -> None:
        assert queue.status_url("abc") == "/api/v1/testsvc/jobs/abc"


# -- execute -----------------------------------------------------------------------------------------------


class TestExecute:
    def test_success(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {"v": 42})
        before = utcnow()
        outcome = queue.execute(job.id)
        assert outcome == Outcome("ran")
        done = queue.get(job.id, ALICE)
        assert done.status == "succeeded"
        assert done.result == {"echo": {"v": 42}, "attempt": 1, "owner": ALICE.account_id}
        assert done.error is None
        assert done.progress == 1.0
        assert done.attempts == 1
        assert done.lease_expires_at is None
        assert done.worker == queue.worker_name and done.worker.startswith("testsvc@")
        assert aware(done.started_at) and aware(done.finished_at)
        assert before - timedelta(seconds=1) <= done.started_at <= done.finished_at <= utcnow()

    def test_bio_error_fails_with_its_code(self, queue: JobQueue) -> None:
        @queue.handler("unreadable")
        def unreadable(ctx: JobContext) -> dict:
            raise Unprocessable("no ridges found", code="unreadable_print", details={"quality": 0.1})

        job = queue.submit(ALICE, "unreadable", {})
        assert queue.execute(job.id).state == "ran"
        done = row(queue, job.id)
        assert done.status == "failed"
        assert done.error == {"code": "unreadable_print", "message": "no ridges found", "details": {"quality": 0.1}}
        assert done.result is None
        assert done.attempts == 1  # a BioError is final: no retry
        assert done.lease_expires_at is None and done.finished_at is not None

    def test_unexpected_exception_is_internal_error(self, queue: JobQueue) -> None:
        @queue.handler("crash")
        def crash(ctx: JobContext) -> dict:
            raise ZeroDivisionError("division by zero")

        job = queue.submit(ALICE, "crash", {})
        assert queue.execute(job.id).state == "ran"
        done = row(queue, job.id)
        assert done.status == "failed"
        assert done.error["code"] == "internal_error"
        assert "ZeroDivisionError" in done.error["message"]
        assert done.attempts == 1

    def test_transient_error_retried_until_max_attempts(self, queue: JobQueue) -> None:
        calls: list[int] = []

        @queue.handler("flaky")
        def flaky(ctx: JobContext) -> dict:
            calls.append(ctx.attempt)
            raise TransientJobError("dependency briefly down")

        job = queue.submit(ALICE, "flaky", {})
        first = queue.execute(job.id)
        assert first == Outcome("retry", retry_in=2.0)
        r = row(queue, job.id)
        assert r.status == "pending" and r.attempts == 1 and r.error is None
        assert r.lease_expires_at is not None and r.lease_expires_at > utcnow()
        second = queue.execute(job.id)
        assert second == Outcome("retry", retry_in=4.0)
        third = queue.execute(job.id)
        assert third == Outcome("ran")
        done = row(queue, job.id)
        assert done.status == "failed"
        assert done.error == {"code": "transient_failure", "message": "dependency briefly down"}
        assert done.attempts == 3
        assert calls == [1, 2, 3]
        assert queue.execute(job.id).state == "skipped"
        assert calls == [1, 2, 3]

    def test_transient_error_then_success(self, queue: JobQueue) -> None:
        @queue.handler("once-flaky")
        def once_flaky(ctx: JobContext) -> dict:
            if ctx.attempt == 1:
                raise TransientJobError("try again")
            return {"attempt": ctx.attempt}

        job = queue.submit(ALICE, "once-flaky", {})
        assert queue.execute(job.id).state == "retry"
        assert queue.execute(job.id).state == "ran"
        done = row(queue, job.id)
        assert done.status == "succeeded" and done.result == {"attempt": 2} and done.attempts == 2

    def test_retry_backoff_is_capped(self, make_queue: Callable[..., JobQueue]) -> None:
        q = make_queue(job_max_attempts=10)

        @q.handler("flaky")
        def flaky(ctx: JobContext) -> dict:
            raise TransientJobError("down")

        job = q.submit(ALICE, "flaky", {})
        delays = [q.execute(job.id).retry_in for _ in range(9)]
        assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
        assert q.execute(job.id) == Outcome("ran")
        assert row(q, job.id).status == "failed"

    def test_finished_job_is_skipped(self, queue: JobQueue) -> None:
        calls = []

        @queue.handler("count")
        def count(ctx: JobContext) -> dict:
            calls.append(1)
            return {}

        job = queue.submit(ALICE, "count", {})
        assert queue.execute(job.id).state == "ran"
        finished = row(queue, job.id)
        assert queue.execute(job.id) == Outcome("skipped")
        assert queue.execute(job.id) == Outcome("skipped")
        assert len(calls) == 1
        again = row(queue, job.id)
        assert (again.status, again.attempts, again.finished_at) == ("succeeded", 1, finished.finished_at)

    def test_unknown_job_id_is_skipped(self, queue: JobQueue) -> None:
        assert queue.execute(new_id()) == Outcome("skipped")

    def test_running_job_with_live_lease_is_busy(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        set_columns(queue, job.id, status="running", attempts=1, lease_expires_at=utcnow() + timedelta(minutes=5))
        assert queue.execute(job.id) == Outcome("busy")
        assert row(queue, job.id).attempts == 1

    def test_unknown_kind_in_row_fails(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        set_columns(queue, job.id, kind="retired-kind")
        assert queue.execute(job.id).state == "ran"
        done = row(queue, job.id)
        assert done.status == "failed" and done.error["code"] == "unknown_job_kind"

    def test_progress_renews_lease_and_clamps(self, queue: JobQueue) -> None:
        seen: dict[str, Any] = {}

        @queue.handler("long")
        def long(ctx: JobContext) -> dict:
            set_columns(queue, ctx.id, lease_expires_at=utcnow() + timedelta(seconds=1))
            ctx.progress(0.5)
            r = row(queue, ctx.id)
            seen["progress"], seen["lease"] = r.progress, r.lease_expires_at
            ctx.progress(7.0)
            seen["high"] = row(queue, ctx.id).progress
            ctx.progress(-3.0)
            seen["low"] = row(queue, ctx.id).progress
            return {}

        job = queue.submit(ALICE, "long", {})
        queue.execute(job.id)
        assert seen["progress"] == 0.5
        assert seen["lease"] > utcnow() + timedelta(seconds=20)  # time limit 30 + grace 5 from now
        assert seen["high"] == 1.0 and seen["low"] == 0.0
        assert row(queue, job.id).progress == 1.0

    def test_handler_sees_a_copy_of_params(self, queue: JobQueue) -> None:
        @queue.handler("mutate")
        def mutate(ctx: JobContext) -> dict:
            ctx.params["added"] = True
            assert ctx.kind == "mutate" and ctx.owner_id == ALICE.account_id and ctx.queue is queue
            return {"ok": True}

        job = queue.submit(ALICE, "mutate", {"a": 1})
        queue.execute(job.id)
        assert row(queue, job.id).params == {"a": 1}

    def test_concurrent_execute_runs_handler_once(self, make_queue: Callable[..., JobQueue]) -> None:
        q = make_queue()
        calls: list[str] = []
        lock = threading.Lock()

        @q.handler("slow")
        def slow(ctx: JobContext) -> dict:
            with lock:
                calls.append(threading.current_thread().name)
            time.sleep(0.3)
            return {"done": True}

        job = q.submit(ALICE, "slow", {})
        n = 4
        barrier = threading.Barrier(n)
        outcomes: list[str] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                barrier.wait()
                outcomes.append(q.execute(job.id).state)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, name=f"w{i}") for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []
        assert len(calls) == 1
        assert len(outcomes) == n
        assert outcomes.count("ran") == 1
        assert set(outcomes) <= {"ran", "busy", "skipped"}
        done = row(q, job.id)
        assert done.status == "succeeded" and done.attempts == 1

    def test_debug_delay(self, make_queue: Callable[..., JobQueue]) -> None:
        q = make_queue(job_debug_delay_s=0.3)

        @q.handler("quick")
        def quick(ctx: JobContext) -> dict:
            return {}

        job = q.submit(ALICE, "quick", {})
        start = time.monotonic()
        q.execute(job.id)
        assert time.monotonic() - start >= 0.3

    def test_debug_delay_ignored_in_production(self, make_queue: Callable[..., JobQueue]) -> None:
        q = make_queue(job_debug_delay_s=5.0, env="production")

        @q.handler("quick")
        def quick(ctx: JobContext) -> dict:
            return {}

        job = q.submit(ALICE, "quick", {})
        start = time.monotonic()
        q.execute(job.id)
        assert time.monotonic() - start < 2.0
    def test_stale_worker_cannot_overwrite_newer_attempt(self, queue: JobQueue) -> None:
        @queue.handler("slow-then-fail")
        def slow_then_fail(ctx: JobContext) -> dict:
            if ctx.attempt == 1:
                # This worker took too long: its lease ran out and another worker picked the job up
                # and finished it. When this stale attempt finally fails, it must not win.
                expire_lease(queue, ctx.id)
                assert queue.execute(ctx.id).state == "ran"
                assert row(queue, ctx.id).status == "succeeded"
                raise RuntimeError("stale attempt failed late")
            return {"attempt": ctx.attempt}

        job = queue.submit(ALICE, "slow-then-fail", {})
        queue.execute(job.id)
        done = row(queue, job.id)
        assert done.status == "succeeded", done.error
        assert done.result == {"attempt": 2}
    def test_unstorable_result_fails_the_job(self, queue: JobQueue) -> None:
        @queue.handler("bad-result")
        def bad_result(ctx: JobContext) -> dict:
            return {"when": datetime(2024, 1, 1)}  # not JSON

        job = queue.submit(ALICE, "bad-result", {})
        queue.execute(job.id)
        done = row(queue, job.id)
        assert done.status == "failed"
        assert done.error["code"] == "internal_error"


# -- reap --------------------------------------------------------------------------------------------------


class TestReap:
    @pytest.fixture
    def killer_queue(self, make_queue: Callable[..., JobQueue]) -> Callable[..., JobQueue]:
        def make(**over: Any) -> JobQueue:
            q = make_queue(**over)
            state = {"die": True}

            @q.handler("work")
            def work(ctx: JobContext) -> dict:
                if state["die"]:
                    raise WorkerKilled()
                return {"attempt": ctx.attempt}

            q.state = state  # type: ignore[attr-defined]
            return q

        return make

    def test_expired_running_job_requeued_then_completes(self, killer_queue: Callable[..., JobQueue]) -> None:
        q = killer_queue()
        token = request_id_var.set("req-reap")
        try:
            job = q.submit(ALICE, "work", {})
        finally:
            request_id_var.reset(token)
        kill_worker_during(q, job.id)
        # Lease still valid: the reaper leaves it alone.
        assert q.reap() == {"requeued": 0, "failed": 0}
        expire_lease(q, job.id)
        q.dispatcher.sent.clear()
        assert q.reap() == {"requeued": 1, "failed": 0}
        assert q.dispatcher.sent == [(job.id, 0.0, "req-reap")]  # request id carried to the new attempt
        r = row(q, job.id)
        assert r.status == "pending" and r.attempts == 1
        # The hold stops a second reaper (or this one, later) from sending it again.
        assert q.reap() == {"requeued": 0, "failed": 0}
        assert q.dispatcher.ids == [job.id]
        q.state["die"] = False
        assert q.execute(job.id).state == "ran"
        done = row(q, job.id)
        assert done.status == "succeeded" and done.result == {"attempt": 2} and done.attempts == 2

    def test_out_of_attempts_marked_worker_lost(self, killer_queue: Callable[..., JobQueue]) -> None:
        q = killer_queue(job_max_attempts=2)
        job = q.submit(ALICE, "work", {})
        kill_worker_during(q, job.id)
        expire_lease(q, job.id)
        assert q.reap() == {"requeued": 1, "failed": 0}
        kill_worker_during(q, job.id)
        expire_lease(q, job.id)
        sent_before = list(q.dispatcher.sent)
        assert q.reap() == {"requeued": 0, "failed": 1}
        assert q.dispatcher.sent == sent_before  # not dispatched again
        done = row(q, job.id)
        assert done.status == "failed"
        assert done.error["code"] == "worker_lost"
        assert "lost" in done.error["message"] and "2 attempts" in done.error["message"]
        assert done.attempts == 2 and done.lease_expires_at is None
        # Redelivery of the old message runs nothing.
        q.state["die"] = False
        assert q.execute(job.id) == Outcome("skipped")
        assert row(q, job.id).status == "failed"

    def test_execute_of_expired_running_job_out_of_attempts(self, killer_queue: Callable[..., JobQueue]) -> None:
        q = killer_queue(job_max_attempts=1)
        job = q.submit(ALICE, "work", {})
        kill_worker_during(q, job.id)
        expire_lease(q, job.id)
        q.state["die"] = False
        # A late re-delivery cannot claim it (attempts used up); the reaper then fails it.
        assert q.execute(job.id).state in ("busy", "skipped")
        q.reap()
        assert row(q, job.id).error["code"] == "worker_lost"

    def test_expired_running_job_can_be_claimed_directly(self, killer_queue: Callable[..., JobQueue]) -> None:
        q = killer_queue()
        job = q.submit(ALICE, "work", {})
        kill_worker_during(q, job.id)
        expire_lease(q, job.id)
        q.state["die"] = False
        # Late-ack redelivery of the same message arrives before the reaper: it may take the job over.
        assert q.execute(job.id).state == "ran"
        assert row(q, job.id).status == "succeeded"

    def test_stale_pending_job_redispatched(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        queue.dispatcher.sent.clear()  # the broker lost the message
        assert queue.reap() == {"requeued": 0, "failed": 0}  # too young
        set_columns(queue, job.id, created_at=utcnow() - timedelta(seconds=600))
        assert queue.reap() == {"requeued": 1, "failed": 0}
        assert queue.dispatcher.ids == [job.id]
        assert queue.reap() == {"requeued": 0, "failed": 0}  # held for redispatch_after_s
        assert queue.execute(job.id).state == "ran"
        assert row(queue, job.id).status == "succeeded"

    def test_pending_after_zero_takes_fresh_pending_jobs(self, queue: JobQueue) -> None:
        jobs = [queue.submit(ALICE, "echo", {"i": i}) for i in range(3)]
        queue.dispatcher.sent.clear()
        assert queue.reap(pending_after_s=0) == {"requeued": 3, "failed": 0}
        assert sorted(queue.dispatcher.ids) == sorted(j.id for j in jobs)

    def test_reap_limited_to_given_ids(self, killer_queue: Callable[..., JobQueue]) -> None:
        q = killer_queue()
        a, b = q.submit(ALICE, "work", {}), q.submit(ALICE, "work", {})
        for j in (a, b):
            kill_worker_during(q, j.id)
            expire_lease(q, j.id)
        assert q.reap([a.id]) == {"requeued": 1, "failed": 0}
        assert row(q, a.id).status == "pending" and row(q, b.id).status == "running"
        assert q.reap([]) == {"requeued": 0, "failed": 0}

    def test_reap_skips_finished_jobs(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        queue.execute(job.id)
        set_columns(queue, job.id, created_at=utcnow() - timedelta(days=1),
                    lease_expires_at=utcnow() - timedelta(days=1))
        assert queue.reap(pending_after_s=0) == {"requeued": 0, "failed": 0}
        assert row(queue, job.id).status == "succeeded"

    def test_broker_down_during_reap_keeps_job(self, killer_queue: Callable[..., JobQueue]) -> None:
        q = killer_queue()
        job = q.submit(ALICE, "work", {})
        kill_worker_during(q, job.id)
        expire_lease(q, job.id)
        q.dispatcher.fail = True
        assert q.reap() == {"requeued": 0, "failed": 0}
        r = row(q, job.id)
        assert r.status == "pending"  # not lost: a later reap sends it once the hold expires
        q.dispatcher.fail = False
        set_columns(q, job.id, lease_expires_at=utcnow() - timedelta(seconds=1),
                    created_at=utcnow() - timedelta(seconds=600))
        assert q.reap() == {"requeued": 1, "failed": 0}

    def test_concurrent_reapers_dispatch_once(self, killer_queue: Callable[..., JobQueue]) -> None:
        q = killer_queue()
        job = q.submit(ALICE, "work", {})
        kill_worker_during(q, job.id)
        expire_lease(q, job.id)
        q.dispatcher.sent.clear()
        barrier = threading.Barrier(4)
        results: list[dict] = []

        def reaper() -> None:
            barrier.wait()
            results.append(q.reap())

        threads = [threading.Thread(target=reaper) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sum(r["requeued"] for r in results) == 1
        assert q.dispatcher.ids == [job.id]


# -- get / list --------------------------------------------------------------------------------------------


class TestRead:
    def test_get_own_job(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {"a": 1})
        got = queue.get(job.id, ALICE)
        assert got.id == job.id and got.params == {"a": 1} and got.status == "pending"

    def test_get_other_account_is_not_found(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        with pytest.raises(NotFound) as info:
            queue.get(job.id, BOB)
        assert info.value.status_code == 404 and info.value.code == "job_not_found"
        # even an admin of another account: ownership, not role, decides
        with pytest.raises(NotFound):
            queue.get(job.id, Identity("acct-admin", "admin"))

    @pytest.mark.parametrize("job_id", ["0" * 32, "", "x" * 65, "x" * 10_000, "'; DROP TABLE x; --"])
    def test_get_unknown_ids(self, queue: JobQueue, job_id: str) -> None:
        with pytest.raises(NotFound):
            queue.get(job_id, ALICE)

    def test_get_of_expired_running_job_triggers_reap(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        set_columns(queue, job.id, status="running", attempts=1, lease_expires_at=utcnow() - timedelta(seconds=1))
        queue.dispatcher.sent.clear()
        got = queue.get(job.id, ALICE)
        assert got.status == "pending"
        assert queue.dispatcher.ids == [job.id]

    def test_get_of_expired_running_job_out_of_attempts(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        set_columns(queue, job.id, status="running", attempts=3, lease_expires_at=utcnow() - timedelta(seconds=1))
        got = queue.get(job.id, ALICE)
        assert got.status == "failed" and got.error["code"] == "worker_lost"

    def test_get_of_live_running_job_does_not_reap(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        set_columns(queue, job.id, status="running", attempts=1, lease_expires_at=utcnow() + timedelta(minutes=1))
        queue.dispatcher.sent.clear()
        assert queue.get(job.id, ALICE).status == "running"
        assert queue.dispatcher.sent == []

    def test_get_by_other_account_does_not_reap(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {})
        set_columns(queue, job.id, status="running", attempts=1, lease_expires_at=utcnow() - timedelta(seconds=1))
        queue.dispatcher.sent.clear()
        with pytest.raises(NotFound):
            queue.get(job.id, BOB)
        assert queue.dispatcher.sent == []

    def test_list_own_jobs_newest_first(self, queue: JobQueue) -> None:
        ids = []
        for i in range(5):
            ids.append(queue.submit(ALICE, "echo", {"i": i}).id)
            set_columns(queue, ids[-1], created_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=i))
        queue.submit(BOB, "echo", {})
        listed = queue.list(ALICE)
        assert [j.id for j in listed] == ids[::-1]
        assert [j.id for j in queue.list(ALICE, limit=2)] == ids[::-1][:2]
        assert [j.id for j in queue.list(ALICE, limit=2, offset=2)] == ids[::-1][2:4]
        assert len(queue.list(BOB)) == 1
        assert queue.list(Identity("nobody", "user")) == []

    def test_job_to_dict(self, queue: JobQueue) -> None:
        job = queue.submit(ALICE, "echo", {"p": 1})
        queue.execute(job.id)
        d = job_to_dict(queue.get(job.id, ALICE), queue)
        assert set(d) == {"id", "kind", "status", "progress", "attempts", "created_at", "started_at",
                          "finished_at", "result", "error", "status_url"}
        assert d["status_url"] == f"/api/v1/testsvc/jobs/{job.id}"
        assert d["status"] == "succeeded" and d["result"]["echo"] == {"p": 1}
        assert "params" not in d and "owner_id" not in d


# -- ThreadDispatcher (real threads) -----------------------------------------------------------------------


def wait_final(q: JobQueue, job_id: str, timeout: float = 15.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = row(q, job_id)
        if r.status in FINAL:
            return r
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} not finished: {row(q, job_id).status}")


class TestThreadDispatcher:
    def test_jobs_run_off_the_calling_thread_with_request_id(self, make_queue: Callable[..., JobQueue]) -> None:
        q = make_queue()
        seen: dict[str, tuple[str, str | None]] = {}

        @q.handler("where")
        def where(ctx: JobContext) -> dict:
            seen[ctx.id] = (threading.current_thread().name, request_id_var.get(), service_var.get())
            return {"n": ctx.params["n"] * 2}

        dispatcher = ThreadDispatcher(q, threads=2)
        q.dispatcher = dispatcher
        try:
            jobs = []
            for n in range(6):
                token = request_id_var.set(f"rid-{n}")
                try:
                    jobs.append(q.submit(ALICE, "where", {"n": n}))
                finally:
                    request_id_var.reset(token)
            for n, job in enumerate(jobs):
                done = wait_final(q, job.id)
                assert done.status == "succeeded" and done.result == {"n": n * 2}
                thread_name, rid, service = seen[job.id]
                assert thread_name.startswith("jobs-testsvc") and thread_name != threading.current_thread().name
                assert rid == f"rid-{n}"
                assert service == "testsvc"  # job logs name their service
        finally:
            dispatcher.shutdown()
        assert request_id_var.get() is None

    def test_handler_crash_does_not_kill_pool(self, make_queue: Callable[..., JobQueue]) -> None:
        q = make_queue()

        @q.handler("die")
        def die(ctx: JobContext) -> dict:
            raise RuntimeError("boom")

        @q.handler("ok")
        def ok(ctx: JobContext) -> dict:
            return {"ok": True}

        dispatcher = ThreadDispatcher(q, threads=1)
        q.dispatcher = dispatcher
        try:
            bad = q.submit(ALICE, "die", {})
            good = q.submit(ALICE, "ok", {})
            assert wait_final(q, bad.id).error["code"] == "internal_error"
            assert wait_final(q, good.id).status == "succeeded"
        finally:
            dispatcher.shutdown()

    def test_duplicate_dispatch_runs_once(self, make_queue: Callable[..., JobQueue]) -> None:
        q = make_queue()
        calls: list[int] = []

        @q.handler("slow")
        def slow(ctx: JobContext) -> dict:
            calls.append(1)
            time.sleep(0.2)
            return {}

        dispatcher = ThreadDispatcher(q, threads=4)
        q.dispatcher = dispatcher
        try:
            job = q.submit(ALICE, "slow", {})
            for _ in range(3):
                dispatcher.dispatch(job.id)
            wait_final(q, job.id)
            time.sleep(0.3)
        finally:
            dispatcher.shutdown()
        assert len(calls) == 1

    def test_transient_retry_through_timer(self, make_queue: Callable[..., JobQueue],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        q = make_queue()
        attempts: list[int] = []

        @q.handler("flaky")
        def flaky(ctx: JobContext) -> dict:
            attempts.append(ctx.attempt)
            if ctx.attempt == 1:
                raise TransientJobError("once")
            return {"attempt": ctx.attempt}

        # Shrink the 2 s back-off so the test stays fast; the countdown path is still exercised.
        real_execute = q.execute

        def fast_execute(job_id: str) -> Outcome:
            out = real_execute(job_id)
            if out.retry_in is not None:
                out.retry_in = 0.05
            return out

        monkeypatch.setattr(q, "execute", fast_execute)
        dispatcher = ThreadDispatcher(q, threads=1)
        q.dispatcher = dispatcher
        try:
            job = q.submit(ALICE, "flaky", {})
            done = wait_final(q, job.id)
        finally:
            dispatcher.shutdown()
        assert done.status == "succeeded" and done.result == {"attempt": 2}
        assert attempts == [1, 2]


def test_job_status_enum() -> None:
    assert [s.value for s in JobStatus] == ["pending", "running", "succeeded", "failed"]
    assert FINAL == {"succeeded", "failed"}
    assert JobStatus.pending == "pending"


def test_bio_error_subclass_is_bio_error() -> None:
    assert issubclass(Unprocessable, BioError)
    assert not issubclass(TransientJobError, BioError)


def test_abandoned_job_releases_what_it_holds(tmp_path: Path) -> None:
    """A job the reaper gives up as worker_lost runs its kind's on_abandon hook (uploads deleted)."""
    settings = CommonSettings(env="test", var_dir=tmp_path, job_max_attempts=1)
    engine = get_engine(settings.database_url)
    Base.metadata.create_all(engine)
    released: list[dict] = []
    queue = JobQueue("testsvc", Job, session_factory(settings.database_url), settings, "/api/v1/testsvc/jobs")
    queue.dispatcher = RecordingDispatcher()
    queue.handler("held", on_abandon=released.append)(lambda ctx: {})
    job = queue.submit(ALICE, "held", {"input_key": "k1"})
    with session_scope(queue.sessions) as s:  # claimed by a worker that then died
        s.execute(update(Job).where(Job.id == job.id).values(status="running", attempts=1,
                                                            lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert queue.reap() == {"requeued": 0, "failed": 1}
    assert queue.get(job.id, ALICE).error["code"] == "worker_lost"
    assert released == [{"input_key": "k1"}]
    dispose_engines()
