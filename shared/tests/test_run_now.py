"""run_sync / submit_and_wait: the work goes through the real jobs table and thread dispatcher."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import DeclarativeBase

from bio_shared.db import dispose_engines, get_engine, session_factory
from bio_shared.errors import TimeBudgetExceeded, Unprocessable
from bio_shared.identity import Identity
from bio_shared.jobs import JobContext, JobMixin, JobQueue, JobStatus, ThreadDispatcher
from bio_shared.run_now import run_sync, submit_and_wait
from bio_shared.settings import CommonSettings


class Base(DeclarativeBase):
    pass


class RunNowJob(JobMixin, Base):
    __tablename__ = "run_now_test_jobs"


class PrintUnusable(Unprocessable):
    code = "test_print_unusable"


ALICE = Identity("acct-alice", "user")
release = threading.Event()


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[JobQueue]:
    url = f"sqlite:///{(tmp_path / 'jobs.db').as_posix()}"
    Base.metadata.create_all(get_engine(url))
    settings = CommonSettings(var_dir=tmp_path, database_url=url, env="test", internal_secret="s" * 40)
    q = JobQueue("runnow", RunNowJob, session_factory(url), settings, status_path="/api/v1/runnow/jobs")
    q.dispatcher = ThreadDispatcher(q, 2)

    @q.handler("double")
    def double(ctx: JobContext) -> dict[str, Any]:
        return {"value": 2 * ctx.params["value"], "attempt": ctx.attempt}

    @q.handler("refuse")
    def refuse(ctx: JobContext) -> dict[str, Any]:
        raise PrintUnusable("too blurry", details={"quality": 4})

    @q.handler("slow")
    def slow(ctx: JobContext) -> dict[str, Any]:
        release.wait(10)
        return {"done": True}

    release.clear()
    yield q
    release.set()
    q.dispatcher.shutdown()
    dispose_engines()


def test_run_sync_returns_the_result_and_the_job_row_is_final(queue: JobQueue) -> None:
    assert run_sync(queue, ALICE, "double", {"value": 21}, budget_s=5) == {"value": 42, "attempt": 1}
    (job,) = queue.list(ALICE)
    assert job.status == JobStatus.succeeded.value and job.attempts == 1


def test_run_sync_raises_the_stored_error_as_its_class(queue: JobQueue) -> None:
    with pytest.raises(PrintUnusable) as exc:
        run_sync(queue, ALICE, "refuse", {}, budget_s=5)
    assert exc.value.status_code == 422 and exc.value.message == "too blurry" and exc.value.details == {"quality": 4}


def test_run_sync_budget_exceeded_points_to_the_job_which_goes_on(queue: JobQueue) -> None:
    start = time.monotonic()
    with pytest.raises(TimeBudgetExceeded) as exc:
        run_sync(queue, ALICE, "slow", {}, budget_s=0.3)
    assert 0.3 <= time.monotonic() - start < 2.0
    err = exc.value
    assert err.status_code == 503 and err.code == "time_budget_exceeded"
    job_id = err.details["job_id"]
    assert err.details["status_url"] == f"/api/v1/runnow/jobs/{job_id}" == err.headers["Location"]
    release.set()
    job = submit_and_wait(queue, ALICE, "double", {"value": 1}, wait_s=5)
    assert job.status == JobStatus.succeeded.value
    deadline = time.monotonic() + 5
    while queue.get(job_id, ALICE).status != JobStatus.succeeded.value:
        assert time.monotonic() < deadline, "the job went on after the budget"
        time.sleep(0.02)


def test_submit_and_wait_returns_an_unfinished_row_after_wait_s(queue: JobQueue) -> None:
    job = submit_and_wait(queue, ALICE, "slow", {}, wait_s=0.1)
    assert job.status in (JobStatus.pending.value, JobStatus.running.value)
    assert submit_and_wait(queue, ALICE, "double", {"value": 2}, wait_s=0).status in ("pending", "running",
                                                                                       "succeeded")
