"""Face verify use cases; no FastAPI imports.

A verification is a job: both uploads are decoded at once (bad input gets its 4xx and leaves no job
and no blob), stored, and the job runs detection, the pose check and the embeddings in a worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from bio_face_verify.engine.pose import PoseTolerance
from bio_face_verify.engine.verify import AnalysisOptions, FaceImageError, Verifier, get_verifier
from bio_face_verify.settings import FaceVerifySettings
from bio_shared.errors import BioError, Unprocessable
from bio_shared.images import Mode, fit_rgb
from bio_shared.inference import configure_torch, timed_inference
from bio_shared.jobs import FINAL, JobContext, TransientJobError
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import decode_for, register_normalize_job

log = logging.getLogger(__name__)

NORMALIZE_MODE: Mode = "rgb"
VERIFY_KIND = "verify"
IMAGES = ("image_a", "image_b")
# HTTP status of each failure a verification job can end with (the synchronous variant answers with it).
ERROR_STATUS = {"no_face": 422, "multiple_faces": 422, "face_too_small": 422, "non_frontal": 422,
                "input_missing": 410, "corrupt_image": 422, "not_an_image": 415, "too_many_pixels": 413}


@dataclass(frozen=True)
class VerifyRequest:
    pose_policy: str = "reject"
    multiple_faces: str = "error"


def verifier_for(settings: FaceVerifySettings) -> Verifier:
    """The process's models (loaded on first use, then cached for every job)."""
    device = configure_torch()
    return get_verifier(settings.model, device, settings.facenet_weights)


def load_models(rt: ServiceRuntime) -> Verifier:
    with timed_inference(rt.name, "load"):
        return verifier_for(rt.settings)


def options(settings: FaceVerifySettings, params: dict[str, Any]) -> AnalysisOptions:
    return AnalysisOptions(
        pose_policy=params.get("pose_policy", "reject"), multiple_faces=params.get("multiple_faces", "error"),
        tolerance=PoseTolerance(settings.max_yaw_deg, settings.max_pitch_deg, settings.max_roll_deg),
        min_face_px=settings.min_face_px, min_confidence=settings.min_confidence, max_side=settings.max_side)


def submit_verification(rt: ServiceRuntime, identity: Any, uploads: dict[str, tuple[bytes, str | None]],
                        req: VerifyRequest) -> Any:
    """Decode both images (errors name the image), store them, submit the job."""
    decoded = {}
    for label in IMAGES:
        data, _ = uploads[label]
        try:
            decoded[label] = decode_for(rt, data, "rgb")
        except BioError as exc:
            details = exc.details if isinstance(exc.details, dict) else ({} if exc.details is None
                                                                          else {"reason": exc.details})
            raise BioError(f"{label}: {exc.message}", code=exc.code, status_code=exc.status_code,
                           details={"image": label, **details}) from exc
    keys: dict[str, str] = {}
    try:
        for label in IMAGES:
            keys[label] = rt.blobs.put(rt.blobs.new_key(identity.account_id, "face_verify-inputs", "bin"),
                                       uploads[label][0])
        params = {
            "inputs": keys,
            "images": {label: {"filename": uploads[label][1], "format": decoded[label].format,
                               "width": decoded[label].width, "height": decoded[label].height}
                       for label in IMAGES},
            "pose_policy": req.pose_policy, "multiple_faces": req.multiple_faces,
        }
        return rt.jobs.submit(identity, VERIFY_KIND, params)
    except Exception:
        for key in keys.values():
            rt.blobs.delete(key)
        raise


def run_verification(rt: ServiceRuntime, ctx: JobContext) -> dict[str, Any]:
    settings: FaceVerifySettings = rt.settings
    keys: dict[str, str] = ctx.params["inputs"]
    start = time.perf_counter()
    try:
        blobs = {label: rt.blobs.get(keys[label]) for label in IMAGES}
    except BioError as exc:  # blob_not_found: an earlier attempt finished the work, or it was purged
        raise BioError("the uploaded images are no longer available; submit them again", code="input_missing",
                       status_code=410) from exc
    except OSError as exc:  # the shared volume briefly unavailable: worth a retry
        raise TransientJobError(f"reading the uploads failed: {exc}") from exc
    opts = options(settings, ctx.params)
    try:
        verifier = verifier_for(settings)
        analyses = {}
        for i, label in enumerate(IMAGES):
            rgb = decode_for(rt, blobs[label], "rgb").pixels
            with timed_inference(rt.name, f"{verifier.detector.name}+{verifier.spec.name}"):
                analyses[label] = verifier.analyze(rgb, label, opts)
            ctx.progress(0.4 * (i + 1))
        comparison = verifier.compare(analyses["image_a"], analyses["image_b"])
    except FaceImageError as exc:
        _drop_inputs(rt, keys)
        raise Unprocessable(exc.message, code=exc.code, details=exc.details) from exc
    except BioError:
        _drop_inputs(rt, keys)
        raise
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():  # a busy GPU: another attempt may find room
            raise TransientJobError(str(exc)) from exc
        raise
    _drop_inputs(rt, keys)
    described = verifier.describe()
    return {
        **comparison,
        "model": described["model"]["name"],
        "model_info": described["model"],
        "detector": described["detector"]["name"],
        "detector_info": described["detector"],
        "pose_policy": opts.pose_policy,
        "multiple_faces": opts.multiple_faces,
        "pose_tolerance_deg": {"yaw": opts.tolerance.max_yaw, "pitch": opts.tolerance.max_pitch,
                               "roll": opts.tolerance.max_roll},
        "images": {label: {**ctx.params["images"][label], **analyses[label].as_dict()} for label in IMAGES},
        "timings_ms": {
            **{f"{label}_{k[:-2]}": round(v * 1000, 1) for label in IMAGES
               for k, v in analyses[label].timings.items()},
            "total": round((time.perf_counter() - start) * 1000, 1)},
    }


def _drop_inputs(rt: ServiceRuntime, keys: dict[str, str]) -> None:
    for key in keys.values():
        rt.blobs.delete(key)


def wait_for(rt: ServiceRuntime, job_id: str, identity: Any, timeout_s: float) -> Any:
    """The job once final, or as it is when ``timeout_s`` has passed (read from the database)."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        job = rt.jobs.get(job_id, identity)
        if job.status in FINAL or time.monotonic() >= deadline:
            return job
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.1)


def register_jobs(rt: ServiceRuntime) -> None:
    transform = partial(fit_rgb, max_side=rt.settings.max_side)
    register_normalize_job(rt, transform, mode=NORMALIZE_MODE)

    @rt.jobs.handler(VERIFY_KIND, on_abandon=lambda params: _drop_inputs(rt, params["inputs"]))
    def verify(ctx: JobContext) -> dict[str, Any]:
        return run_verification(rt, ctx)
