"""Celery worker entry: ``celery -A bio_fingerprint.tasks worker -Q fingerprint``."""

from bio_fingerprint.app import build

runtime = build()
app = runtime.celery
run_job = runtime.run_job
