"""bio_shared.jobs: get/list, job_to_dict, the ThreadDispatcher (real threads) and the status enum
(the fixtures ``db_url``, ``make_queue`` and ``queue`` come from conftest.py; the jobs table and helpers from
bio_testing.jobs; the PostgreSQL cases are marked ``integration``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bio_shared.db import utcnow
from bio_shared.errors import BioError, NotFound, Unprocessable
from bio_shared.identity import Identity
from bio_shared.jobs import (
    FINAL,
    JobContext,
    JobQueue,
    JobStatus,
    Outcome,
    ThreadDispatcher,
    TransientJobError,
    job_to_dict,
)
from bio_shared.logging import request_id_var, service_var
from bio_testing.jobs import ALICE, BOB, set_columns, wait_final

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
