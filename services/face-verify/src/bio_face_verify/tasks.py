"""Celery worker entry: ``celery -A bio_face_verify.tasks worker -Q face_verify``.

Each worker child process configures torch (one thread on CPU, the GPU when present) and loads the
models once when it starts, before its first task; children are replaced after bio_shared's
``worker_max_tasks_per_child`` tasks, and each task runs under ``task_time_limit``
(``BIO_FACE_VERIFY_JOB_TIME_LIMIT_S``, 60 s by default). Transient failures are retried by the job
queue up to ``BIO_JOB_MAX_ATTEMPTS`` times.
"""

import logging
from typing import Any

from celery import signals

from bio_face_verify.app import build
from bio_face_verify.service.jobs import load_models

log = logging.getLogger(__name__)

runtime = build()
app = runtime.celery
run_job = runtime.run_job


@signals.worker_process_init.connect(weak=False)
def _load_models_in_child(**_: Any) -> None:
    try:
        load_models(runtime)
    except Exception:
        log.exception("loading the face verify models failed")
