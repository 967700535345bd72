"""Face embeddings: FaceNet InceptionResnetV1 (VGGFace2, 512-d) or dlib's ResNet (128-d).

Each embedder takes the RGB image and an MTCNN face and returns one vector; its ``spec`` carries the
model's name, dimension, documented decision threshold on the euclidean distance and distance -> score
mapping (for dlib the platform's fitted one, bio_shared/calibration/dlib_resnet_v1.json).

* ``facenet-vggface2``: facenet-pytorch's recipe: the MTCNN box (no margin) cropped and resized to
  160 x 160, standardised as (x - 127.5) / 128; the output is L2-normalised. Threshold 1.1 (distance
  between unit vectors, range 0..2), the usual operating point of these weights on LFW.
* ``dlib_resnet_v1`` (bio_shared.model_registry): dlib's 5-point landmark model fitted inside the face's rectangle, then dlib's own
  aligned 150 x 150 chip (padding 0.25) and ResNet descriptor. Threshold 0.6, dlib's documented value
  (99.38 % on LFW). dlib's landmark models were trained on dlib detector rectangles, which are square and
  sit lower on the face than MTCNN boxes: the MTCNN box is mapped onto that convention first
  (``dlib_rect_from_box``).

The plain dlib pipeline (``PlainDlib``: HOG detector, 5-point landmarks, ResNet) is kept for the
evaluation, as the baseline the MTCNN pipelines are compared with.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bio_face_verify.engine.mtcnn import Face, extract_face
from bio_shared import model_registry
from bio_shared.model_registry import DLIB_RESNET_V1, DLIB_SHAPE_5, DLIB_SHAPE_68
from bio_shared.scoring import DistanceCalibration, load_calibration


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    dim: int
    threshold: float  # verified when the euclidean distance is at most this
    calibration: DistanceCalibration  # distance -> verification_score

    def score(self, distance: float) -> float:
        return self.calibration.score(distance)

    def as_dict(self) -> dict[str, Any]:
        c = self.calibration
        return {"name": self.name, "version": self.version, "dim": self.dim, "metric": "euclidean",
                "threshold": self.threshold,
                "score": {"slope": c.slope, "midpoint": c.midpoint, "fitted_on": list(c.fitted_on)}}


# The platform's dlib descriptor (one id and one loader: bio_shared.model_registry), scored with the
# platform's fitted mapping; FaceNet keeps its own documented logistic (0.5 at its threshold, width 0.1).
DLIB_SPEC = ModelSpec(DLIB_RESNET_V1.name, DLIB_RESNET_V1.version, 128, 0.6, load_calibration(DLIB_RESNET_V1.name))
FACENET_SPEC = ModelSpec("facenet-vggface2", "20180402-114759-vggface2", 512, 1.1,
                         DistanceCalibration("facenet-vggface2", 10.0, 1.1, [], "not fitted: 0.5 at the threshold"))
_DLIB_LOCK = threading.Lock()  # dlib's predictors keep per-object buffers: one call at a time


def dlib_rect_from_box(box: np.ndarray) -> Any:
    """A dlib-detector-like square for an MTCNN box: side = box width, centre 7 % of the box height lower."""
    import dlib

    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = x2 - x1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + 0.07 * (y2 - y1)
    return dlib.rectangle(int(round(cx - side / 2)), int(round(cy - side / 2)),
                          int(round(cx + side / 2)), int(round(cy + side / 2)))


def landmarks68(rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib's 68 iBUG 300-W landmarks (68 x 2, pixels of ``rgb``) fitted inside a face box (MTCNN's, mapped
    onto the dlib detector's rectangle convention the model was trained on)."""
    sp68 = model_registry.load(DLIB_SHAPE_68)
    img = np.ascontiguousarray(rgb)
    with _DLIB_LOCK:
        shape = sp68(img, dlib_rect_from_box(box))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def dlib_descriptor(rgb: np.ndarray, rect: Any) -> np.ndarray:
    """dlib's ResNet descriptor, run with torch on the 150 px chip with 25 % padding that dlib's own
    compute_face_descriptor aligns (same descriptors to ~1e-5)."""
    import dlib

    sp5 = model_registry.load(DLIB_SHAPE_5)
    net = model_registry.load(DLIB_RESNET_V1)
    img = np.ascontiguousarray(rgb)
    with _DLIB_LOCK:
        shape = sp5(img, rect)
        chip = np.asarray(dlib.get_face_chip(img, shape, 150, 0.25), dtype=np.uint8)
    return np.asarray(net.forward(chip[None])[0], dtype=np.float64)


def load_dlib_models() -> None:
    for model_id in (DLIB_SHAPE_5, DLIB_SHAPE_68, DLIB_RESNET_V1):
        model_registry.load(model_id)


class DlibEmbedder:
    spec = DLIB_SPEC

    def __init__(self) -> None:
        load_dlib_models()

    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return dlib_descriptor(rgb, dlib_rect_from_box(face.box))


class FacenetEmbedder:
    spec = FACENET_SPEC

    def __init__(self, weights: Path, device: str = "cpu") -> None:
        import torch

        from bio_face_verify.engine.nets import load_facenet

        self.torch = torch
        self.device = torch.device(device)
        self.net = load_facenet(Path(weights)).to(self.device)
        self.weights = Path(weights)
        self._lock = threading.Lock()

    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        crop = extract_face(rgb, face.box, 160, margin=0).astype(np.float32)
        x = self.torch.from_numpy((crop - 127.5) / 128.0).permute(2, 0, 1).unsqueeze(0).to(self.device)
        with self._lock, self.torch.inference_mode():
            out = self.net(x)
        return np.asarray(out[0].cpu().numpy(), dtype=np.float64)


def distances(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(euclidean distance, cosine similarity) of two embeddings."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    eu = float(np.linalg.norm(a - b))
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0
    return eu, max(-1.0, min(1.0, cos))


class PlainDlib:
    """The plain dlib pipeline (face_recognition's default): HOG detector with one upsampling, the
    largest face, 5-point landmarks, ResNet descriptor. Used as the evaluation baseline."""

    spec = DLIB_SPEC
    name = "dlib-hog+dlib-resnet-v1"

    def __init__(self) -> None:
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        load_dlib_models()

    def embed_image(self, rgb: np.ndarray) -> np.ndarray | None:
        img = np.ascontiguousarray(rgb)
        with _DLIB_LOCK:
            rects = list(self.detector(img, 1))
        if not rects:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        return dlib_descriptor(img, rect)
