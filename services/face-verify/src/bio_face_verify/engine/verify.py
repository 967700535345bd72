"""Pairwise verification: pick one face per image under the caller's policy, check its pose, embed,
compare. Pure compute (numpy, torch, dlib); the service maps :class:`FaceImageError` to API errors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bio_face_verify.engine.embed import DlibEmbedder, FacenetEmbedder, ModelSpec, distances, landmarks68
from bio_face_verify.engine.mtcnn import LANDMARK_NAMES, MTCNN, Face
from bio_face_verify.engine.nets import facenet_weights_path
from bio_face_verify.engine.pose import Pose, PoseTolerance, estimate_pose
from bio_shared.images import resize_max_side

PosePolicy = Literal["reject", "flag"]
MultiFacePolicy = Literal["error", "largest"]
ModelChoice = Literal["auto", "facenet", "dlib"]


class FaceImageError(Exception):
    """One image cannot be used: ``code`` is stable, ``details`` says which image and why."""

    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class AnalysisOptions:
    pose_policy: PosePolicy = "reject"
    multiple_faces: MultiFacePolicy = "error"
    tolerance: PoseTolerance = field(default_factory=PoseTolerance)
    min_face_px: int = 40  # shorter side of the face box, in pixels of the analysed image (also the
    # smallest face the detector searches for first)
    min_confidence: float = 0.9  # detections below this are not counted as faces
    max_side: int = 1024  # images are analysed with their longer side at most this
    # Another face counts (for multiple_faces) when its box is at least this fraction of the largest
    # face's: small faces in the background, and the detector's occasional small false positives, do not.
    other_face_ratio: float = 0.4


def pixel_box(box: np.ndarray, width: int, height: int) -> dict[str, int]:
    """The platform's face box: integer pixels {x, y, width, height}, clipped to the image (MTCNN boxes may
    reach past the border)."""
    x1, y1, x2, y2 = (int(round(float(v))) for v in np.clip(box[:4], 0, [width, height, width, height]))
    return {"x": x1, "y": y1, "width": max(0, x2 - x1), "height": max(0, y2 - y1)}


@dataclass
class FaceAnalysis:
    face: Face  # in pixels of the original image
    pose: Pose
    frontal: bool
    pose_violations: list[str]
    embedding: np.ndarray
    faces_found: int
    image_size: tuple[int, int]  # width, height of the original image
    timings: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        w, h = self.image_size
        return {
            "width": self.image_size[0], "height": self.image_size[1],
            "faces_found": self.faces_found,
            "confidence": round(self.face.confidence, 5),
            "box": pixel_box(self.face.box, w, h),
            "landmarks": {n: [round(float(x), 1), round(float(y), 1)]
                          for n, (x, y) in zip(LANDMARK_NAMES, self.face.landmarks, strict=True)},
            **self.pose.as_dict(),
            "frontal": self.frontal,
            "pose_violations": self.pose_violations,
        }


class Verifier:
    """The detector and the embedding model of one process (build once, share across jobs)."""

    def __init__(self, model: ModelChoice = "auto", device: str = "cpu", facenet_weights: Path | None = None,
                 min_face_size: int = 20) -> None:
        self.device = device
        self.detector = MTCNN(device=device, min_face_size=min_face_size)
        weights = Path(facenet_weights) if facenet_weights else facenet_weights_path()
        use_facenet = model == "facenet" or (model == "auto" and weights.is_file())
        self.embedder: DlibEmbedder | FacenetEmbedder = (
            FacenetEmbedder(weights, device) if use_facenet else DlibEmbedder())

    @property
    def spec(self) -> ModelSpec:
        return self.embedder.spec

    def describe(self) -> dict[str, Any]:
        return {"model": self.spec.as_dict(),
                "detector": {"name": self.detector.name, "version": self.detector.version, "device": self.device}}

    def analyze(self, rgb: np.ndarray, label: str, opts: AnalysisOptions) -> FaceAnalysis:
        h, w = rgb.shape[:2]
        small = resize_max_side(rgb, opts.max_side)
        scale = small.shape[1] / w
        t0 = time.perf_counter()
        # The pyramid starts at the smallest accepted face (fast); only when that finds nothing is the
        # image searched down to the detector's minimum, to tell "too small" from "no face".
        faces = [f for f in self.detector.detect(small, max(opts.min_face_px, self.detector.min_face_size))
                 if f.confidence >= opts.min_confidence]
        if not faces and opts.min_face_px > self.detector.min_face_size:
            faces = [f for f in self.detector.detect(small) if f.confidence >= opts.min_confidence]
        t1 = time.perf_counter()
        if not faces:
            raise FaceImageError("no_face", f"{label}: no face found", {"image": label})
        big = [f for f in faces if min(f.width, f.height) >= opts.min_face_px]
        if not big:
            largest = max(faces, key=lambda f: f.area)
            raise FaceImageError(
                "face_too_small",
                f"{label}: the face is {min(largest.width, largest.height):.0f} px; at least {opts.min_face_px} px "
                f"are needed (after scaling the image to at most {opts.max_side} px)",
                {"image": label, "face_px": round(min(largest.width, largest.height), 1),
                 "min_face_px": opts.min_face_px})
        largest = max(big, key=lambda f: f.area)
        side = min(largest.width, largest.height)
        big = [f for f in big if min(f.width, f.height) >= opts.other_face_ratio * side]
        if len(big) > 1 and opts.multiple_faces == "error":
            raise FaceImageError(
                "multiple_faces",
                f"{label}: {len(big)} faces found; send a photo of one person, or multiple_faces=largest",
                {"image": label, "faces": len(big), "boxes": [pixel_box(f.box / scale, w, h) for f in big]})
        face = largest
        pose = estimate_pose(landmarks68(small, face.box), small.shape[1], small.shape[0])
        violations = opts.tolerance.violations(pose)
        if violations and opts.pose_policy == "reject":
            raise FaceImageError("non_frontal", f"{label}: the face is not frontal ({'; '.join(violations)})",
                                 {"image": label, **pose.as_dict(), "violations": violations})
        embedding = self.embedder.embed(small, face)
        t2 = time.perf_counter()
        return FaceAnalysis(face=face.scaled(1 / scale), pose=pose, frontal=not violations,
                            pose_violations=violations, embedding=embedding, faces_found=len(big),
                            image_size=(w, h), timings={"detect_s": t1 - t0, "embed_s": t2 - t1})

    def compare(self, a: FaceAnalysis, b: FaceAnalysis) -> dict[str, Any]:
        eu, cos = distances(a.embedding, b.embedding)
        spec = self.spec
        return {
            "verified": eu <= spec.threshold,
            "verification_score": round(spec.score(eu), 6),
            "euclidean_distance": round(eu, 6),
            "cosine_similarity": round(cos, 6),
            "threshold": spec.threshold,
        }


_cache: dict[tuple[Any, ...], Verifier] = {}
_cache_lock = threading.Lock()


def get_verifier(model: ModelChoice = "auto", device: str = "cpu", facenet_weights: Path | None = None,
                 min_face_size: int = 20) -> Verifier:
    """One Verifier per configuration per process (models are loaded once, never per job)."""
    weights = Path(facenet_weights) if facenet_weights else facenet_weights_path()
    key = (model, device, str(weights), weights.is_file(), min_face_size)
    with _cache_lock:
        verifier = _cache.get(key)
        if verifier is None:
            verifier = _cache[key] = Verifier(model, device, weights, min_face_size)
        return verifier
