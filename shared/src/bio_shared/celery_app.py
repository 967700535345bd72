"""Celery app factory: one app and one queue per service, tuned so a killed worker loses nothing.

* ``task_acks_late`` + ``task_reject_on_worker_lost``: the message is acknowledged only after the
  task returns, and re-queued if the worker child dies mid-task.
* ``worker_prefetch_multiplier=1``: a worker never hoards jobs it cannot start.
* The jobs table stays the source of truth (see :mod:`bio_shared.jobs`); the broker carries ids.
* Broker restarts: a worker retries the broker every 0.5-2 s (Celery's default backs off to 30 s)
  and, each time it reconnects, re-sends the pending jobs, whose messages a restarted broker may
  have lost; without this they would wait ``job_redispatch_after_s`` for the reaper.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import Celery, bootsteps, signals
from celery.worker.consumer import Consumer

from bio_shared.db import dispose_engines
from bio_shared.jobs import JobQueue
from bio_shared.logging import configure_logging, request_id_var
from bio_shared.settings import CommonSettings

log = logging.getLogger(__name__)


def make_celery(service: str, settings: CommonSettings) -> Celery:
    # Without Redis the jobs run in-process and this app never sends; "memory://" only lets it exist.
    app = Celery(f"bio_{service}", broker=settings.redis_url or "memory://", set_as_current=False)
    app.conf.update(
        task_default_queue=service,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_time_limit=settings.job_time_limit_s,
        task_soft_time_limit=max(1, settings.job_time_limit_s - 5),
        worker_max_tasks_per_child=200,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        # A submit must not hang while Redis is down: a few quick tries, then the job waits in the
        # database for the reaper (see JobQueue.submit).
        broker_connection_timeout=2,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout_s},
        worker_consumer="bio_shared.celery_app:QuickReconnectConsumer",
        task_serializer="json",
        accept_content=["json"],
        enable_utc=True,
    )
    return app


class QuickReconnectConsumer(Consumer):  # type: ignore[misc]  # Celery is untyped
    """The worker's consumer, retrying a lost broker every 0.5 s, backing off to 2 s at most."""

    def ensure_connected(self, conn: Any) -> Any:
        original = conn.ensure_connection

        def quick(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("interval_start", 0.5)
            kwargs.setdefault("interval_step", 0.5)
            kwargs.setdefault("interval_max", 2.0)
            return original(*args, **kwargs)

        conn.ensure_connection = quick
        return super().ensure_connected(conn)


def recover_on_reconnect(app: Celery, queue: JobQueue) -> None:
    """A consumer step: started on each connection to the broker. The first one is the worker's
    start (its reap runs at worker_ready); every later one is a reconnect, which re-sends the
    service's pending jobs, off the consumer's thread."""

    class RecoverPending(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
        requires = ("celery.worker.consumer.tasks:Tasks",)

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.connections = 0

        def start(self, parent: Any) -> None:
            self.connections += 1
            if self.connections > 1:
                threading.Thread(target=_recover, args=(queue,), name=f"recover-{queue.service}", daemon=True).start()

    app.steps["consumer"].add(RecoverPending)


def _recover(queue: JobQueue) -> None:
    try:
        sent = queue.recover_pending()
        log.warning("broker reconnected: %s pending job(s) of %s sent again", sent, queue.service)
    except Exception:
        log.exception("re-sending pending jobs of %s after a broker reconnect failed", queue.service)


def register_job_task(app: Celery, queue: JobQueue) -> Any:
    """The one task of a service: run the job whose id the message carries."""

    # shared=False: the task belongs to this app only (a second app of the same service in one
    # process, as in tests, must not capture it).
    @app.task(name=f"bio_{queue.service}.run_job", bind=True, max_retries=queue.settings.job_max_attempts,  # type: ignore[untyped-decorator]
              shared=False)
    def run_job(self: Any, job_id: str) -> str:  # self: the bound Celery Task
        token = request_id_var.set(getattr(self.request, "request_id", None)
                                   or (self.request.headers or {}).get("request_id"))
        try:
            outcome = queue.execute(job_id)
        finally:
            request_id_var.reset(token)
        if outcome.retry_in is not None:
            raise self.retry(countdown=outcome.retry_in)
        return outcome.state

    return run_job


def install_worker_hooks(app: Celery, queue: JobQueue, *, log_level: str = "INFO") -> None:
    """Fork safety, logging, metrics endpoint, a reap of orphaned jobs when the worker starts, and
    re-sending pending jobs when it reconnects to the broker."""
    recover_on_reconnect(app, queue)

    @signals.worker_process_init.connect(weak=False)  # type: ignore[untyped-decorator]
    def _child_init(**_: Any) -> None:
        dispose_engines()  # never share a connection pool across fork
        os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("BIO_TORCH_THREADS", "1"))

    @signals.setup_logging.connect(weak=False)  # type: ignore[untyped-decorator]
    def _logging(**_: Any) -> None:
        configure_logging(f"{queue.service}-worker", log_level)

    @signals.worker_ready.connect(weak=False)  # type: ignore[untyped-decorator]
    def _ready(sender: Any = None, **_: Any) -> None:
        port = int(os.environ.get("BIO_WORKER_METRICS_PORT", "0") or 0)
        if port:
            from bio_shared.metrics import start_metrics_server

            start_metrics_server(port, os.environ.get("BIO_WORKER_METRICS_ADDR", "127.0.0.1"))
        try:
            counts = queue.reap()
            log.info("worker ready; reaped %s", counts)
        except Exception:
            log.exception("reap at worker start failed")
