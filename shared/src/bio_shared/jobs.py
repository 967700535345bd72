"""Jobs: submit, status reads and the crash-safe executor (the table mixin and states are in job_table).

The jobs table is the source of truth; the broker only carries job ids. A job is *claimed* by an
atomic conditional UPDATE that also sets a lease. A worker that dies leaves a job whose lease
expires; the reaper (worker start-up, the API's reaper thread, status reads) re-dispatches it, or
fails it once its attempts are used up; a worker that reconnects to the broker re-sends the pending
jobs (their messages may be lost). A job id delivered twice runs once: only one claim can win."""

from __future__ import annotations

import builtins
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from bio_shared.db import rowcount, session_scope, utcnow
from bio_shared.dispatchers import CeleryDispatcher as CeleryDispatcher  # re-exported
from bio_shared.dispatchers import Dispatcher
from bio_shared.dispatchers import ThreadDispatcher as ThreadDispatcher  # re-exported
from bio_shared.errors import BioError, NotFound, ServiceUnavailable
from bio_shared.identity import Identity
from bio_shared.job_table import FINAL as FINAL  # re-exported
from bio_shared.job_table import JobMixin as JobMixin  # re-exported
from bio_shared.job_table import JobStatus as JobStatus  # re-exported
from bio_shared.job_table import job_to_dict as job_to_dict  # re-exported
from bio_shared.job_table import new_id as new_id  # re-exported
from bio_shared.logging import request_id_var
from bio_shared.metrics import JOB_DURATION, JOB_QUEUE_WAIT, JOBS
from bio_shared.settings import CommonSettings

log = logging.getLogger(__name__)


class TransientJobError(Exception):
    """Raise from a handler for a failure worth retrying (a dependency briefly unavailable)."""


@dataclass
class JobContext:
    """What a handler sees: the job's data, never a live ORM object shared across threads."""

    id: str
    owner_id: str
    kind: str
    params: dict[str, Any]
    attempt: int
    queue: JobQueue
    extra: dict[str, Any] = field(default_factory=dict)

    def progress(self, fraction: float) -> None:
        """Report progress and renew the lease (long jobs call this so they are not reaped)."""
        self.queue._renew(self.id, self.attempt, max(0.0, min(1.0, fraction)))


Handler = Callable[[JobContext], dict[str, Any]]


@dataclass
class Outcome:
    state: str  # ran, skipped, busy, retry, stale
    retry_in: float | None = None


class JobQueue:
    """Submit, read, execute and reap the jobs of one service."""

    def __init__(self, service: str, model: type[JobMixin], sessions: sessionmaker[Session], settings: CommonSettings,
                 status_path: str) -> None:
        self.service = service
        self.model = model
        self.sessions = sessions
        self.settings = settings
        self.status_path = status_path.rstrip("/")  # e.g. /api/v1/fingerprint/jobs
        self.handlers: dict[str, Handler] = {}
        self.abandon_hooks: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.dispatcher: Dispatcher | None = None
        self.worker_name = f"{service}@{uuid.uuid4().hex[:8]}"

    # -- registration -----------------------------------------------------------------------------
    def handler(self, kind: str, *, on_abandon: Callable[[dict[str, Any]], None] | None = None
                ) -> Callable[[Handler], Handler]:
        """Register the handler of a job kind. ``on_abandon(params)`` releases what a job holds (its
        uploads) when the reaper gives the job up as ``worker_lost``: no handler runs then."""
        def register(fn: Handler) -> Handler:
            self.handlers[kind] = fn
            if on_abandon is not None:
                self.abandon_hooks[kind] = on_abandon
            return fn

        return register

    def status_url(self, job_id: str) -> str:
        return f"{self.status_path}/{job_id}"

    # -- API side ---------------------------------------------------------------------------------
    def submit(self, identity: Identity, kind: str, params: dict[str, Any]) -> Any:
        """Insert the row first (committed), then dispatch. If the broker is down the job is kept,
        pending, and the reaper sends it again once the broker is back: the caller's 202 holds."""
        if kind not in self.handlers:
            raise ValueError(f"no handler for job kind {kind!r}")
        if self.dispatcher is None:
            raise ServiceUnavailable("the job queue is not configured", code="queue_unavailable")
        rid = request_id_var.get()
        with session_scope(self.sessions) as s:
            job = self.model(id=new_id(), owner_id=identity.account_id, kind=kind, params=params,
                             status=JobStatus.pending.value, request_id=rid, created_at=utcnow())
            s.add(job)
        JOBS.labels(self.service, kind, "submitted").inc()
        try:
            self._dispatcher().dispatch(job.id, request_id=rid)
        except Exception:
            log.warning("dispatch of job %s failed; the reaper will send it again", job.id, exc_info=True)
            retry_at = utcnow() + timedelta(seconds=self.settings.job_dispatch_retry_s)
            with session_scope(self.sessions) as s:
                s.execute(update(self.model).where(self.model.id == job.id).values(lease_expires_at=retry_at))
            JOBS.labels(self.service, kind, "deferred").inc()
        return job

    def get(self, job_id: str, identity: Identity) -> Any:
        """A job of the caller's account (another account's job is 'not found', never 'forbidden')."""
        with self.sessions() as s:
            job = s.get(self.model, job_id) if len(job_id) <= 64 else None
            if job is None or job.owner_id != identity.account_id:
                raise NotFound("job not found", code="job_not_found")
        if job.status == JobStatus.running.value and job.lease_expires_at and job.lease_expires_at < utcnow():
            self.reap([job_id])
            with self.sessions() as s:
                job = s.get(self.model, job_id)
        return job

    def state_counts(self) -> dict[str, int]:
        with self.sessions() as s:
            m = self.model
            rows = s.execute(select(m.status, func.count()).where(m.status.in_(("pending", "running")))
                             .group_by(m.status))
            return {status: count for status, count in rows}

    def list(self, identity: Identity, limit: int = 50, offset: int = 0) -> list[Any]:
        with self.sessions() as s:
            stmt = (select(self.model).where(self.model.owner_id == identity.account_id)
                    .order_by(self.model.created_at.desc()).limit(limit).offset(offset))
            return list(s.scalars(stmt))

    # -- worker side ------------------------------------------------------------------------------
    def execute(self, job_id: str) -> Outcome:
        claim = self._claim(job_id)
        if claim is None:
            return self._why_not_claimed(job_id)
        ctx, queued_for = claim
        JOB_QUEUE_WAIT.labels(self.service, ctx.kind).observe(queued_for)
        start = time.perf_counter()
        outcome, state = Outcome("ran"), JobStatus.failed
        values: dict[str, Any] = {}
        try:
            handler = self.handlers.get(ctx.kind)
            if handler is None:
                raise BioError(f"unknown job kind {ctx.kind}", code="unknown_job_kind")
            self._debug_delay(ctx)
            result = handler(ctx)
            json.dumps(result)  # a result the jobs table cannot store is the handler's bug: fail now
            state, values = JobStatus.succeeded, {"result": result}
        except TransientJobError as exc:
            if ctx.attempt < self.settings.job_max_attempts:
                self._release(job_id, ctx.attempt)
                JOBS.labels(self.service, ctx.kind, "retried").inc()
                return Outcome("retry", retry_in=min(2.0 ** ctx.attempt, 60.0))
            values = {"error": {"code": "transient_failure", "message": str(exc)}}
        except BioError as exc:
            values = {"error": exc.to_dict()}
        except Exception as exc:
            log.exception("job %s (%s) failed", job_id, ctx.kind)
            values = {"error": {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}}
        finally:
            JOB_DURATION.labels(self.service, ctx.kind).observe(time.perf_counter() - start)
        # Fenced by the attempt number: a worker whose lease expired and whose job was taken over
        # cannot overwrite the newer attempt's outcome.
        if self._finish(job_id, state, attempt=ctx.attempt, **values):
            JOBS.labels(self.service, ctx.kind, state.value).inc()
            log.info("job %s (%s) %s on attempt %s in %.3f s", job_id, ctx.kind, state.value, ctx.attempt,
                     time.perf_counter() - start, extra={"job_id": job_id})
        else:
            log.warning("job %s attempt %s finished after losing its lease; outcome dropped", job_id, ctx.attempt)
            outcome = Outcome("stale")
        return outcome

    def reap(self, job_ids: builtins.list[str] | None = None, pending_after_s: float | None = None) -> dict[str, int]:
        """Re-dispatch running jobs whose lease expired, and pending jobs no worker took within
        ``job_redispatch_after_s`` (their message was lost with a broker restart or a process exit);
        fail those out of attempts. Safe from every process at once: each transition is conditional."""
        now = utcnow()
        counts = {"requeued": 0, "failed": 0}
        redispatch_s = self.settings.job_redispatch_after_s
        with self.sessions() as s:
            m = self.model
            stale_pending = now - timedelta(seconds=redispatch_s if pending_after_s is None else pending_after_s)
            cond = or_(
                (m.status == JobStatus.running.value) & (m.lease_expires_at < now),
                # never sent (or its message was lost) for a long time
                (m.status == JobStatus.pending.value) & m.lease_expires_at.is_(None) & (m.created_at < stale_pending),
                # a failed dispatch or a requeue whose hold has passed
                (m.status == JobStatus.pending.value) & (m.lease_expires_at < now),
            )
            stmt = select(m.id, m.attempts, m.status, m.request_id, m.kind, m.params).where(cond)
            if job_ids is not None:
                stmt = stmt.where(m.id.in_(job_ids))
            rows = list(s.execute(stmt.limit(500)))
        for job_id, attempts, status, rid, kind, params in rows:
            if attempts >= self.settings.job_max_attempts:
                reason = ("the worker running this job was lost" if status == JobStatus.running.value
                          else "the job could not be delivered to a worker")
                if self._finish(job_id, JobStatus.failed, expect=status,
                                error={"code": "worker_lost", "message": f"{reason} after {attempts} attempts"}):
                    counts["failed"] += 1
                    JOBS.labels(self.service, kind, "failed").inc()
                    self._abandon(job_id, kind, params or {})
                continue
            # Push the lease forward before dispatching so concurrent reapers do not double-send,
            # and a job waiting in a long queue is not sent again before redispatch_s.
            hold = now + timedelta(seconds=redispatch_s)
            with session_scope(self.sessions) as s:
                changed = rowcount(s.execute(
                    update(self.model).where(self.model.id == job_id, self.model.status == status,
                                             or_(self.model.lease_expires_at.is_(None),
                                                 self.model.lease_expires_at < now))
                    .values(status=JobStatus.pending.value, lease_expires_at=hold)
                ))
            if changed:
                try:
                    self._dispatcher().dispatch(job_id, request_id=rid)
                    counts["requeued"] += 1
                    log.warning("job %s requeued after %s attempt(s)", job_id, attempts)
                except Exception:
                    log.exception("requeue of job %s failed", job_id)
        return counts

    def recover_pending(self, grace_s: float = 1.0, window_s: float = 5.0) -> int:
        """Send every pending job again, whatever its lease, when a worker reconnects to a broker that
        may have lost its queue: they run in seconds, not after ``job_redispatch_after_s``. Jobs newer
        than ``grace_s`` or re-sent by another process in the last ``window_s`` are skipped; a job
        whose message survived is delivered twice and the atomic claim runs it once."""
        now = utcnow()
        hold = now + timedelta(seconds=self.settings.job_redispatch_after_s)
        recently_sent = hold - timedelta(seconds=window_s)
        m = self.model
        with self.sessions() as s:
            rows = list(s.execute(select(m.id, m.request_id).where(
                m.status == JobStatus.pending.value, m.attempts < self.settings.job_max_attempts,
                m.created_at < now - timedelta(seconds=grace_s),
                or_(m.lease_expires_at.is_(None), m.lease_expires_at < recently_sent)).limit(5000)))
        sent = 0
        for job_id, rid in rows:  # conditional: two reconnecting workers do not both send a job
            with session_scope(self.sessions) as s:
                changed = rowcount(s.execute(
                    update(m).where(m.id == job_id, m.status == JobStatus.pending.value,
                                    or_(m.lease_expires_at.is_(None), m.lease_expires_at < recently_sent))
                    .values(lease_expires_at=hold)))
            try:
                if changed:
                    self._dispatcher().dispatch(job_id, request_id=rid)
                    sent += int(changed)
            except Exception:
                log.warning("re-dispatch of job %s after broker reconnect failed", job_id, exc_info=True)
        return sent

    # -- internals --------------------------------------------------------------------------------
    def _abandon(self, job_id: str, kind: str, params: dict[str, Any]) -> None:
        hook = self.abandon_hooks.get(kind)
        if hook is None:
            return
        try:
            hook(params)
        except Exception:
            log.exception("clean-up of abandoned job %s failed", job_id)

    def _dispatcher(self) -> Dispatcher:
        if self.dispatcher is None:
            raise RuntimeError(f"job dispatcher of {self.service} is not configured")
        return self.dispatcher

    def _lease(self) -> datetime:
        return utcnow() + timedelta(seconds=self.settings.job_time_limit_s + self.settings.job_lease_grace_s)

    def _claim(self, job_id: str) -> tuple[JobContext, float] | None:
        now = utcnow()
        m = self.model
        with session_scope(self.sessions) as s:
            changed = rowcount(s.execute(
                update(m)
                .where(m.id == job_id, m.attempts < self.settings.job_max_attempts,
                       or_(m.status == JobStatus.pending.value,
                           (m.status == JobStatus.running.value) & (m.lease_expires_at < now)))
                .values(status=JobStatus.running.value, attempts=m.attempts + 1, started_at=now,
                        lease_expires_at=self._lease(), worker=self.worker_name)
            ))
            if not changed:
                return None
            job = s.get_one(m, job_id)
            ctx = JobContext(id=job.id, owner_id=job.owner_id, kind=job.kind, params=dict(job.params or {}),
                             attempt=job.attempts, queue=self)
            return ctx, max(0.0, (now - job.created_at).total_seconds())

    def _why_not_claimed(self, job_id: str) -> Outcome:
        with self.sessions() as s:
            job = s.get(self.model, job_id)
            if job is None or job.status in FINAL:
                return Outcome("skipped")
            if job.status == JobStatus.running.value:
                # Another worker holds it, or held it and died: the reaper re-dispatches it once
                # its lease has expired, so this delivery can be dropped.
                return Outcome("busy")
        self.reap([job_id])  # out of attempts: fail it with the reason now
        return Outcome("skipped")

    def _renew(self, job_id: str, attempt: int, fraction: float) -> None:
        with session_scope(self.sessions) as s:
            s.execute(update(self.model).where(*self._fence(job_id, attempt))
                      .values(progress=fraction, lease_expires_at=self._lease()))

    def _release(self, job_id: str, attempt: int) -> None:
        with session_scope(self.sessions) as s:
            s.execute(update(self.model).where(*self._fence(job_id, attempt))
                      .values(status=JobStatus.pending.value, lease_expires_at=self._lease()))

    def _fence(self, job_id: str, attempt: int) -> tuple[Any, ...]:
        m = self.model
        return m.id == job_id, m.status == JobStatus.running.value, m.attempts == attempt

    def _finish(self, job_id: str, status: JobStatus, *, result: dict[str, Any] | None = None,
                error: dict[str, Any] | None = None,
                expect: str | None = None, attempt: int | None = None) -> bool:
        values: dict[str, Any] = {"status": status.value, "finished_at": utcnow(), "lease_expires_at": None}
        if status == JobStatus.succeeded:
            values.update(result=result, progress=1.0, error=None)
        else:
            values["error"] = error
        with session_scope(self.sessions) as s:
            if attempt is not None:
                stmt = update(self.model).where(*self._fence(job_id, attempt))
            else:
                stmt = update(self.model).where(self.model.id == job_id)
                if expect:
                    stmt = stmt.where(self.model.status == expect)
            return bool(rowcount(s.execute(stmt.values(**values))))

    def _debug_delay(self, ctx: JobContext) -> None:
        delay = self.settings.job_debug_delay_s
        if delay > 0 and not self.settings.is_production:
            end = time.monotonic() + delay
            while time.monotonic() < end:
                time.sleep(min(0.2, end - time.monotonic()))
