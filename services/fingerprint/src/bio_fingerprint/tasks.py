"""Celery worker entry: ``celery -A bio_fingerprint.tasks worker -Q fingerprint`` (add ``-B`` for the
scheduled clean-up of old outputs, or run ``celery -A bio_fingerprint.tasks beat`` once per deployment).
Shard workers of the two-stage 1:N search (``bio-fingerprint shard-worker --shard I``) serve the queue
``fingerprint-shard-I`` with the ``search_shard`` task."""

from typing import Any

from bio_fingerprint.app import build
from bio_fingerprint.runtime import settings_of
from bio_fingerprint.schemas import FingerprintCleanupOut
from bio_fingerprint.service import search
from bio_fingerprint.service.outputs import cleanup
from bio_shared.fanout import register_shard_task

runtime = build()
app = runtime.celery
run_job = runtime.run_job


@app.task(name="bio_fingerprint.cleanup_outputs", shared=False)
def cleanup_outputs() -> dict:
    """Delete processed outputs older than BIO_FINGERPRINT_OUTPUT_RETENTION_DAYS (rows and images)."""
    return FingerprintCleanupOut.model_validate(cleanup(runtime)).model_dump(mode="json")


def search_shard(owner_id: str, index: int, shards: int, minutiae: list[list[float]], finger: int | None,
                 top_k: int, penetration: float, field: list[int] | None = None) -> list[dict[str, Any]]:
    """One shard's candidates for a probe (JSON in and out: minutiae rows and the orientation field's
    bytes); the caller merges the shards' lists."""
    return search.search_shard(runtime, owner_id, index, shards, minutiae, finger, top_k, penetration, field)


register_shard_task(app, search.TASK, search_shard)

app.conf.beat_schedule = {
    "fingerprint-cleanup-outputs": {
        "task": "bio_fingerprint.cleanup_outputs",
        "schedule": settings_of(runtime).cleanup_interval_s,
        "options": {"queue": runtime.name},
    },
}
