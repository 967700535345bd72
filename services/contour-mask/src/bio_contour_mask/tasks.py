"""Celery worker entry: ``celery -A bio_contour_mask.tasks worker -Q contour_mask``."""

from bio_contour_mask.app import build

runtime = build()
app = runtime.celery
run_job = runtime.run_job
