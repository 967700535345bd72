"""Celery worker entry: ``celery -A bio_face_recognition.tasks worker -Q face_recognition``.

The worker runs the normalize and enroll_zip jobs (handlers registered by ``build``); the dlib models
load on the first job of each worker process and stay loaded (the runtime's state keeps them)."""

from bio_face_recognition.app import build

runtime = build()
app = runtime.celery
run_job = runtime.run_job
