"""The jobs table: its columns (``JobMixin``), the job states, new ids and a job's public JSON shape.

Split out of bio_shared.jobs (the executor), which re-exports every name here.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bio_shared.db import UTCDateTime, utcnow

if TYPE_CHECKING:
    from bio_shared.jobs import JobQueue


class JobStatus(enum.StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


FINAL = {JobStatus.succeeded.value, JobStatus.failed.value}


def new_id() -> str:
    return uuid.uuid4().hex


class JobMixin:
    """Columns of every service's jobs table (``class Job(JobMixin, Base): __tablename__ = ...``)."""

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True, default=JobStatus.pending.value)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    worker: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)

    if TYPE_CHECKING:  # the mapped subclasses take their columns as keywords (the declarative constructor)
        def __init__(self, **kwargs: Any) -> None: ...


def job_to_dict(job: Any, queue: JobQueue) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "result": job.result,
        "error": job.error,
        "status_url": queue.status_url(job.id),
    }
