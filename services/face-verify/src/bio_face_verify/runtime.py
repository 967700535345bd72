"""The face-verify service's name, prefix and typed per-process state."""

from __future__ import annotations

from dataclasses import dataclass

from bio_face_verify.engine.verify import Verifier
from bio_face_verify.settings import FaceVerifySettings
from bio_shared.runtime import ServiceRuntime

NAME, PREFIX = "face_verify", "/api/v1/verify"


@dataclass
class FaceVerifyState:
    settings: FaceVerifySettings
    verifier: Verifier | None = None  # the detector and embedder, once loaded in this process


FaceVerifyRuntime = ServiceRuntime[FaceVerifyState]
