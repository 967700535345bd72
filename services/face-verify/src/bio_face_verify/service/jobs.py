"""The job handlers of face-verify (verify, and the platform's normalize job) and the process's models."""

from __future__ import annotations

from functools import partial
from typing import Any

from bio_face_verify.runtime import FaceVerifyRuntime
from bio_face_verify.service.verification import VERIFY_KIND, drop_inputs, run_verification, verifier_for
from bio_shared.images import Mode, fit_rgb
from bio_shared.inference import timed_inference
from bio_shared.jobs import JobContext
from bio_shared.uploads import register_normalize_job

NORMALIZE_MODE: Mode = "rgb"


def load_models(rt: FaceVerifyRuntime) -> None:
    with timed_inference(rt.name, "load"):
        rt.state.verifier = verifier_for(rt.state.settings)


def register_jobs(rt: FaceVerifyRuntime) -> None:
    register_normalize_job(rt, partial(fit_rgb, max_side=rt.state.settings.max_side), mode=NORMALIZE_MODE)

    @rt.jobs.handler(VERIFY_KIND, on_abandon=lambda params: drop_inputs(rt, params["inputs"]))
    def verify(ctx: JobContext) -> dict[str, Any]:
        return run_verification(rt, ctx)
