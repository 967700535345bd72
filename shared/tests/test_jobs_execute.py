"""bio_shared.jobs: submit and execute (success, failures, retries, leases), on SQLite and PostgreSQL
(the fixtures ``db_url``, ``make_queue`` and ``queue`` come from conftest.py; the jobs table and helpers from
bio_testing.jobs; the PostgreSQL cases are marked ``integration``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from bio_shared.db import utcnow
from bio_shared.errors import ServiceUnavailable, Unprocessable
from bio_shared.jobs import JobContext, JobQueue, Outcome, TransientJobError, new_id
from bio_shared.logging import request_id_var
from bio_testing.jobs import ALICE, aware, expire_lease, row, set_columns

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
