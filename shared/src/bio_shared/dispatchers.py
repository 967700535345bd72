"""How a job id reaches a worker: threads of this process (embedded mode) or the service's Celery
queue (distributed mode). Both only carry the id; the jobs table holds the job."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from bio_shared.logging import request_id_var, service_var

if TYPE_CHECKING:
    from bio_shared.jobs import JobQueue

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None: ...


class ThreadDispatcher:
    """Embedded mode: jobs run in this process on worker threads, off the request thread."""

    def __init__(self, queue: JobQueue, threads: int) -> None:
        self.queue = queue
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"jobs-{queue.service}")

    def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
        if countdown > 0:
            timer = threading.Timer(countdown, self.dispatch, args=(job_id,), kwargs={"request_id": request_id})
            timer.daemon = True
            timer.start()
            return
        self.pool.submit(self._run, job_id, request_id)

    def _run(self, job_id: str, request_id: str | None) -> None:
        token = request_id_var.set(request_id)
        service_var.set(self.queue.service)  # pool threads only ever run this service's jobs
        try:
            outcome = self.queue.execute(job_id)
            if outcome.retry_in is not None:
                self.dispatch(job_id, countdown=outcome.retry_in, request_id=request_id)
        except Exception:
            log.exception("embedded job %s crashed", job_id)
        finally:
            request_id_var.reset(token)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class CeleryDispatcher:
    """Distributed mode: the job id goes to this service's own queue."""

    def __init__(self, task: Any, queue_name: str) -> None:
        self.task = task
        self.queue_name = queue_name

    def dispatch(self, job_id: str, *, countdown: float = 0.0, request_id: str | None = None) -> None:
        self.task.apply_async(args=[job_id], queue=self.queue_name, countdown=countdown or None,
                              headers={"request_id": request_id})
