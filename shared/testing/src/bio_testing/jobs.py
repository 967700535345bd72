"""A throw-away jobs table and helpers for the tests of bio_shared.jobs (submit, execute, reap, read).

The fixtures built on them (``db_url``, ``make_queue``, ``queue``) live in shared/tests/conftest.py.
It never imports pytest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import DeclarativeBase

from bio_shared.db import session_scope, utcnow
from bio_shared.identity import Identity
from bio_shared.jobs import FINAL, JobMixin, JobQueue
from bio_shared.settings import CommonSettings


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "shared_test_jobs"


ALICE = Identity("acct-alice", "user")
BOB = Identity("acct-bob", "user")


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


def make_settings(var_dir: Path, url: str, **over: Any) -> CommonSettings:
    values: dict[str, Any] = dict(var_dir=var_dir, database_url=url, env="test", internal_secret="s" * 40,
                                  job_max_attempts=3, job_time_limit_s=30, job_lease_grace_s=5,
                                  job_redispatch_after_s=300)
    values.update(over)
    return CommonSettings(**values)


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


def aware(dt: datetime | None) -> bool:
    return dt is not None and dt.tzinfo is not None and dt.utcoffset() == timedelta(0)


def wait_final(q: JobQueue, job_id: str, timeout: float = 15.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = row(q, job_id)
        if r.status in FINAL:
            return r
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} not finished: {row(q, job_id).status}")
