"""Celery worker entry: ``celery -A bio_face_recognition.tasks worker -Q face_recognition``."""

from bio_face_recognition.app import build

runtime = build()
app = runtime.celery
run_job = runtime.run_job
