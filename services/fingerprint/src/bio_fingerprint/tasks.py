"""Celery worker entry: ``celery -A bio_fingerprint.tasks worker -Q fingerprint`` (add ``-B`` for the
scheduled clean-up of old outputs, or run ``celery -A bio_fingerprint.tasks beat`` once per deployment)."""

from bio_fingerprint.app import build
from bio_fingerprint.runtime import settings_of
from bio_fingerprint.schemas import FingerprintCleanupOut
from bio_fingerprint.service.outputs import cleanup

runtime = build()
app = runtime.celery
run_job = runtime.run_job


@app.task(name="bio_fingerprint.cleanup_outputs", shared=False)
def cleanup_outputs() -> dict:
    """Delete processed outputs older than BIO_FINGERPRINT_OUTPUT_RETENTION_DAYS (rows and images)."""
    return FingerprintCleanupOut.model_validate(cleanup(runtime)).model_dump(mode="json")


app.conf.beat_schedule = {
    "fingerprint-cleanup-outputs": {
        "task": "bio_fingerprint.cleanup_outputs",
        "schedule": settings_of(runtime).cleanup_interval_s,
        "options": {"queue": runtime.name},
    },
}
