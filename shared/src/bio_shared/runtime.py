"""What every service process holds: settings, database sessions, blob store, job queue, Celery app.

The same runtime serves the API process and the Celery worker of a service; only the dispatcher
differs (in-process threads in the embedded mode, the service's Celery queue otherwise).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic

from celery import Celery
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker
from typing_extensions import TypeVar

from bio_shared.celery_app import install_worker_hooks, make_celery, register_job_task
from bio_shared.db import session_factory, session_scope
from bio_shared.identity import Identity, identity_dependency
from bio_shared.images import Mode
from bio_shared.jobs import CeleryDispatcher, JobQueue, ThreadDispatcher
from bio_shared.metrics import JOB_STATES
from bio_shared.sealed import envelope_for
from bio_shared.settings import CommonSettings
from bio_shared.storage import BlobStore

log = logging.getLogger(__name__)

S = TypeVar("S", default=Any)  # the service's state dataclass
# The service's settings class; covariant, so a runtime of FaceSettings passes where a plain one is expected.
C = TypeVar("C", bound=CommonSettings, default=CommonSettings, covariant=True)
SettingsT = TypeVar("SettingsT", bound=CommonSettings)


@dataclass
class ServiceRuntime(Generic[S, C]):
    """``state`` is the typed per-service part (models, caches, engines): a dataclass each service
    defines in its own ``runtime.py``; ``ServiceRuntime[FaceState, FaceSettings]`` also types ``settings``.
    ``normalize_mode`` is the mode of the shared normalize job, set when it is registered."""

    name: str  # queue name and metrics label, e.g. "fingerprint"
    package: str  # import name holding migrations/, e.g. "bio_fingerprint"
    prefix: str  # e.g. "/api/v1/fingerprint"
    settings: C
    sessions: sessionmaker[Session]
    blobs: BlobStore
    jobs: JobQueue
    celery: Celery
    run_job: Any
    require_identity: Callable[..., Identity]
    # Tables with an owner_id column, children before parents; purge_owner empties them.
    owned_models: list[Any] = field(default_factory=list)  # mapped classes
    normalize_mode: Mode | None = None  # "gray" or "rgb"; set by register_normalize_job
    state: S = None  # type: ignore[assignment]  # set by the service's build step
    _reaper_stop: threading.Event = field(default_factory=threading.Event)

    def start_reaper(self) -> None:
        """Periodic re-dispatch of jobs whose worker died (runs in every API process)."""
        interval = self.settings.job_reap_interval_s

        def loop() -> None:
            while not self._reaper_stop.wait(interval):
                try:
                    self.jobs.reap()
                except Exception:
                    log.exception("job reaper of %s failed", self.name)

        threading.Thread(target=loop, name=f"reaper-{self.name}", daemon=True).start()

    def purge_owner(self, owner_id: str) -> dict[str, int]:
        """Delete everything one account owns in this service: rows of every owned table, then blobs.
        Idempotent, so the gateway can retry a deletion that a service outage interrupted."""
        counts: dict[str, int] = {}
        with session_scope(self.sessions) as s:
            models: list[Any] = [*self.owned_models, self.jobs.model]
            for model in models:
                result: Any = s.execute(delete(model).where(model.owner_id == owner_id))
                counts[model.__tablename__] = result.rowcount
        counts["blobs"] = self.blobs.delete_owner(owner_id)
        return counts

    def stop(self) -> None:
        self._reaper_stop.set()
        dispatcher = self.jobs.dispatcher
        if isinstance(dispatcher, ThreadDispatcher):
            dispatcher.shutdown()


def build_runtime(name: str, package: str, prefix: str, settings: SettingsT, job_model: type,
                  state: S | None = None) -> ServiceRuntime[S, SettingsT]:
    sessions = session_factory(settings.database_url)
    queue = JobQueue(name, job_model, sessions, settings, status_path=f"{prefix}/jobs")
    celery = make_celery(name, settings)
    run_job = register_job_task(celery, queue)
    install_worker_hooks(celery, queue, log_level=settings.log_level)
    JOB_STATES.add(queue)
    if settings.jobs_in_process:
        queue.dispatcher = ThreadDispatcher(queue, settings.embedded_job_threads)
    elif not settings.redis_url:
        raise ValueError(f"{name}: BIO_JOBS_MODE=celery needs BIO_REDIS_URL")
    else:
        queue.dispatcher = CeleryDispatcher(run_job, name)
    return ServiceRuntime(
        name=name, package=package, prefix=prefix, settings=settings, sessions=sessions,
        # one blob folder per service, so an account purge in one service never races another
        blobs=BlobStore(Path(settings.blob_dir or settings.var_dir / "blobs") / name, envelope_for(settings)),
        jobs=queue, celery=celery, run_job=run_job,
        require_identity=identity_dependency(lambda: settings.internal_secret),
        state=state,  # type: ignore[arg-type]  # None until the service sets it
    )
