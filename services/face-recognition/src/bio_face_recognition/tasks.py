"""Celery worker entry: ``celery -A bio_face_recognition.tasks worker -Q face_recognition``.

The worker runs the normalize and enroll_zip jobs; the dlib models load on the first job of each
worker process and stay loaded (FaceService caches the pipeline)."""

from bio_face_recognition.app import build

runtime = build()
app = runtime.celery
run_job = runtime.run_job
