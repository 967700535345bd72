"""Celery worker entry: ``celery -A bio_face_verify.tasks worker -Q face_verify``."""

from bio_face_verify.app import build

runtime = build()
app = runtime.celery
run_job = runtime.run_job
