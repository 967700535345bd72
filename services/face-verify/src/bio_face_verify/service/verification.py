"""Submit a verification (both uploads decoded first; errors name the file and its index) and run it
as a job: detection, the pose check and the embeddings in a worker, through the jobs table."""

from __future__ import annotations

import time
from typing import Any

from bio_face_verify.engine.pose import PoseTolerance
from bio_face_verify.engine.verify import AnalysisOptions, FaceImageError, Verifier, get_verifier
from bio_face_verify.exceptions import InputMissing, face_error
from bio_face_verify.runtime import FaceVerifyRuntime
from bio_face_verify.settings import FaceVerifySettings
from bio_shared.errors import BioError
from bio_shared.identity import Identity
from bio_shared.inference import configure_torch, timed_inference
from bio_shared.jobs import JobContext, TransientJobError
from bio_shared.run_now import submit_and_wait, wait_for_job
from bio_shared.uploads import decode_for

VERIFY_KIND = "verify"
IMAGES = ("image_a", "image_b")
Upload = tuple[bytes, str | None]  # (data, file name)


def verifier_for(settings: FaceVerifySettings) -> Verifier:
    """The process's models (loaded on first use, then cached for every job)."""
    device = configure_torch()
    return get_verifier(settings.model, device, settings.facenet_weights)


def options(settings: FaceVerifySettings, params: dict[str, Any]) -> AnalysisOptions:
    return AnalysisOptions(
        pose_policy=params.get("pose_policy", "reject"), multiple_faces=params.get("multiple_faces", "error"),
        tolerance=PoseTolerance(settings.max_yaw_deg, settings.max_pitch_deg, settings.max_roll_deg),
        min_face_px=settings.min_face_px, min_confidence=settings.min_confidence, max_side=settings.max_side)


def name_file(exc: BioError, label: str, filename: str | None) -> BioError:
    """The same error, its message and details naming the image: ``image`` (the field), ``file``, ``index``."""
    details = exc.details if isinstance(exc.details, dict) else ({} if exc.details is None else {"reason": exc.details})
    exc.message = f"{label}: {exc.message}"
    exc.details = {"image": label, "file": filename, "index": IMAGES.index(label), **details}
    exc.args = (exc.message,)
    return exc


def _store(rt: FaceVerifyRuntime, identity: Identity, uploads: dict[str, Upload]) -> dict[str, Any]:
    decoded = {}
    for label in IMAGES:
        data, filename = uploads[label]
        try:
            decoded[label] = decode_for(rt, data, "rgb")
        except BioError as exc:
            raise name_file(exc, label, filename) from None
    keys: dict[str, str] = {}
    try:
        for label in IMAGES:
            keys[label] = rt.blobs.put(rt.blobs.new_key(identity.account_id, "face_verify-inputs", "bin"),
                                       uploads[label][0])
    except Exception:
        drop_inputs(rt, keys)
        raise
    images = {label: {"filename": uploads[label][1], "format": decoded[label].format,
                      "width": decoded[label].width, "height": decoded[label].height} for label in IMAGES}
    return {"inputs": keys, "images": images}


def submit_verification(rt: FaceVerifyRuntime, identity: Identity, uploads: dict[str, Upload],
                        params: dict[str, Any], wait_s: float = 0.0) -> Any:
    """Decode both images, store them, submit the job; with ``wait_s`` the job row once final or when
    the wait is over (bio_shared.run_now)."""
    stored = _store(rt, identity, uploads)
    try:
        job = submit_and_wait(rt.jobs, identity, VERIFY_KIND, {**stored, **params}, wait_s=0.0)
    except Exception:  # no job row: nobody else will delete the uploads
        drop_inputs(rt, stored["inputs"])
        raise
    return wait_for_job(rt.jobs, job.id, identity, wait_s=wait_s) if wait_s > 0 else job


def _read_inputs(rt: FaceVerifyRuntime, keys: dict[str, str]) -> dict[str, bytes]:
    try:
        return {label: rt.blobs.get(keys[label]) for label in IMAGES}
    except BioError as exc:  # blob_not_found: an earlier attempt finished the work, or it was purged
        raise InputMissing("the uploaded images are no longer available; submit them again") from exc
    except OSError as exc:  # the shared volume briefly unavailable: worth a retry
        raise TransientJobError(f"reading the uploads failed: {exc}") from exc


def _analyse(rt: FaceVerifyRuntime, ctx: JobContext, blobs: dict[str, bytes], opts: AnalysisOptions
             ) -> tuple[Verifier, dict[str, Any], dict[str, Any]]:
    verifier = verifier_for(rt.state.settings)
    analyses = {}
    for i, label in enumerate(IMAGES):
        rgb = decode_for(rt, blobs[label], "rgb").pixels
        with timed_inference(rt.name, f"{verifier.detector.name}+{verifier.spec.name}"):
            try:
                analyses[label] = verifier.analyze(rgb, label, opts)
            except FaceImageError as exc:
                filename = ctx.params["images"][label].get("filename")
                raise face_error(exc.code, exc.message, {**exc.details, "file": filename, "index": i}) from None
        ctx.progress(0.4 * (i + 1))
    return verifier, analyses, verifier.compare(analyses["image_a"], analyses["image_b"])


def run_verification(rt: FaceVerifyRuntime, ctx: JobContext) -> dict[str, Any]:
    keys: dict[str, str] = ctx.params["inputs"]
    start = time.perf_counter()
    blobs = _read_inputs(rt, keys)
    opts = options(rt.state.settings, ctx.params)
    try:
        verifier, analyses, comparison = _analyse(rt, ctx, blobs, opts)
    except BioError:
        drop_inputs(rt, keys)
        raise
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():  # a busy GPU: another attempt may find room
            raise TransientJobError(str(exc)) from exc
        raise
    drop_inputs(rt, keys)
    described = verifier.describe()
    return {
        **comparison,
        "model": described["model"]["name"], "model_info": described["model"],
        "detector": described["detector"]["name"], "detector_info": described["detector"],
        "pose_policy": opts.pose_policy, "multiple_faces": opts.multiple_faces,
        "pose_tolerance_deg": {"yaw": opts.tolerance.max_yaw, "pitch": opts.tolerance.max_pitch,
                               "roll": opts.tolerance.max_roll},
        "images": {label: {**ctx.params["images"][label], **analyses[label].as_dict()} for label in IMAGES},
        "timings_ms": {
            **{f"{label}_{k[:-2]}": round(v * 1000, 1) for label in IMAGES for k, v in analyses[label].timings.items()},
            "total": round((time.perf_counter() - start) * 1000, 1)},
    }


def drop_inputs(rt: FaceVerifyRuntime, keys: dict[str, str]) -> None:
    for key in keys.values():
        rt.blobs.delete(key)
