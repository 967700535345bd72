"""bio_shared.jobs: the reaper (lost workers requeued or failed, stale pending redispatched)
(the fixtures ``db_url``, ``make_queue`` and ``queue`` come from conftest.py; the jobs table and helpers from
bio_testing.jobs; the PostgreSQL cases are marked ``integration``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bio_shared.db import dispose_engines, get_engine, session_factory, session_scope, utcnow
from bio_shared.jobs import JobContext, JobQueue, Outcome
from bio_shared.logging import request_id_var
from bio_shared.settings import CommonSettings
from bio_testing.jobs import ALICE, Base, Job, RecordingDispatcher, expire_lease, row, set_columns


class WorkerKilled(BaseException):
    """Stands for a worker process dying mid-job: nothing in execute() may catch it."""


def kill_worker_during(q: JobQueue, job_id: str) -> None:
    """Run the job with a handler that 'dies' (BaseException): the row stays running with a lease."""
    with pytest.raises(WorkerKilled):
        q.execute(job_id)
    assert row(q, job_id).status == "running"


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
