"""Detect, align and describe every face of an RGB photo (dlib HOG or MMOD, 5/68 landmarks, ResNet).

Speed without losing faces. HOG detection cost grows with the pixel count; the plain dlib pipeline
(face_recognition's default) runs HOG on the photo upsampled once (4x the pixels). Here the detector
sees the photo, in gray, resized to a pixel budget (``detect_max_pixels``, never more than 2x upsampling, which
is what the plain pipeline does), boxes are mapped back, and landmarks, alignment and the descriptor
are computed on the *original* pixels, so embeddings are as good as the plain pipeline's. Small photos
are upsampled exactly like the plain pipeline; a photo where nothing was found gets one more pass at
twice the scale with a padded border (tight crops whose face touches the edges). Callers that need
faces smaller than the budget allows (crowds) pass ``min_face_px``: the scale is then chosen so that a
face of that size is still 80 px (the HOG window) for the detector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import dlib
import numpy as np

from bio_face_recognition.engine.models import MODEL_ID, DlibModels, load_models

Detector = Literal["hog", "cnn"]
HOG_WINDOW = 80  # px: the smallest face the frontal HOG detector finds at scale 1
CNN_WINDOW = 40  # px: the MMOD detector's smallest face
CHIP_SIZE = 150
CHIP_PADDING = 0.25


@dataclass
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the photo's pixels (clipped to it)
    score: float  # detector confidence (HOG: SVM margin; CNN: MMOD score)
    landmarks: np.ndarray  # (5 or 68, 2) float32, photo pixels
    embedding: np.ndarray | None  # (128,) float32
    sharpness: float  # variance of the Laplacian of the aligned gray chip (scale-free: chips are 150 px)
    chip: np.ndarray  # (150, 150, 3) uint8 aligned face

    @property
    def vector(self) -> np.ndarray:
        """The embedding of a face that was embedded (``analyze(embed=True)``, ``describe(embed=True)``)."""
        if self.embedding is None:
            raise ValueError("this face was detected but not embedded")
        return self.embedding

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]

    @property
    def size(self) -> int:
        """The face's size in photo pixels (the smaller side of its box)."""
        return min(self.width, self.height)

    @property
    def area(self) -> int:
        return self.width * self.height


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB array, got {rgb.dtype} {rgb.shape}")


def detection_scale(height: int, width: int, max_pixels: int, min_face_px: int | None = None,
                    window: int = HOG_WINDOW) -> float:
    """How much to resize a photo for detection: within the pixel budget, at most 2x (the plain
    pipeline's one upsampling); with ``min_face_px``, large enough for a face of that size."""
    if min_face_px:
        scale = window / float(min_face_px)
    else:
        scale = math.sqrt(max_pixels / float(height * width))
    return float(min(2.0, scale))


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-3:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


class FacePipeline:
    """``descriptor``: ``torch`` runs the dlib ResNet's weights with torch (same embeddings to ~1e-6,
    several times faster than the BLAS-less dlib wheel), ``dlib`` runs dlib's own forward pass."""

    def __init__(self, models: DlibModels | None = None, *, detect_max_pixels: int = 1_000_000,
                 descriptor: Literal["torch", "dlib"] = "torch") -> None:
        self.models = models or load_models()
        self.detect_max_pixels = detect_max_pixels
        self.net = None
        if descriptor == "torch":
            try:
                from bio_shared.model_registry import load

                self.net = load(MODEL_ID)  # the registered loader: bio_shared.dlib_resnet on torch
            except ImportError:  # torch not installed: dlib's own forward pass
                self.net = None
        self.descriptor = "torch" if self.net is not None else "dlib"

    @property
    def model_name(self) -> str:
        return self.models.model_name

    @property
    def model_version(self) -> str:
        return self.models.model_version

    # -- detection -------------------------------------------------------------------------------
    def _run_detector(self, img: np.ndarray, detector: Detector) -> list[tuple[dlib.rectangle, float]]:
        if detector == "cnn":
            cnn = self.models.cnn
            with self.models.dnn_lock:
                return [(d.rect, float(d.confidence)) for d in cnn(img, 0)]
        rects, scores, _ = self.models.hog.run(img, 0, 0.0)
        return list(zip(rects, (float(s) for s in scores), strict=True))

    def detect(self, rgb: np.ndarray, detector: Detector = "hog", min_face_px: int | None = None
               ) -> list[tuple[tuple[float, float, float, float], float]]:
        """Face boxes (left, top, right, bottom as floats in photo pixels) and scores, best first."""
        _check_rgb(rgb)
        if detector not in ("hog", "cnn"):
            raise ValueError("detector must be 'hog' or 'cnn'")
        h, w = rgb.shape[:2]
        window = CNN_WINDOW if detector == "cnn" else HOG_WINDOW
        scale = detection_scale(h, w, self.detect_max_pixels, min_face_px, window)
        found = self._detect_at(rgb, scale, 0, detector)
        if not found and scale < 2.0:
            # nothing at the budget's scale: one finer pass on a padded photo (small or edge-touching faces)
            found = self._detect_at(rgb, min(2.0, scale * 2.0), max(8, int(0.15 * max(h, w))), detector)
        found.sort(key=lambda f: -f[1])
        return found

    def _detect_at(self, rgb: np.ndarray, scale: float, pad: int, detector: Detector
                   ) -> list[tuple[tuple[float, float, float, float], float]]:
        img = rgb
        if pad:
            img = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        img = _resize(img, scale)
        if detector == "hog":
            # HOG on the luminance: the same faces as on RGB (which takes the strongest channel's
            # gradient) for about 30% less time
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        out = []
        for rect, score in self._run_detector(np.ascontiguousarray(img), detector):
            box = tuple(v / scale - pad for v in (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1))
            out.append((box, score))
        return out

    # -- landmarks, alignment, descriptor ---------------------------------------------------------
    def analyze(self, rgb: np.ndarray, *, detector: Detector = "hog", landmarks: int = 5,
                min_face_px: int | None = None, embed: bool = True, max_faces: int | None = None) -> list[Face]:
        """Every face (largest first when ``max_faces`` limits them; otherwise detector order)."""
        boxes = self.detect(rgb, detector, min_face_px)
        if max_faces is not None:
            boxes = sorted(boxes, key=lambda b: -(b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))[:max_faces]
        faces = [self.describe(rgb, box, score, landmarks=landmarks, embed=False) for box, score in boxes]
        if embed and faces:
            for face, vector in zip(faces, self.embed_chips(np.stack([f.chip for f in faces])), strict=True):
                face.embedding = vector
        return faces

    def describe(self, rgb: np.ndarray, box: tuple[float, float, float, float], score: float = 0.0, *,
                 landmarks: int = 5, embed: bool = True) -> Face:
        h, w = rgb.shape[:2]
        rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])) - 1, int(round(box[3])) - 1)
        shape = self.models.shape_predictor(landmarks)(rgb, rect)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        chip = np.asarray(dlib.get_face_chip(rgb, shape, CHIP_SIZE, CHIP_PADDING), dtype=np.uint8)
        embedding = self.embed_chip(chip) if embed else None
        clipped = (max(0, int(round(box[0]))), max(0, int(round(box[1]))),
                   min(w, int(round(box[2]))), min(h, int(round(box[3]))))
        return Face(box=clipped, score=score, landmarks=points, embedding=embedding, sharpness=sharpness(chip),
                    chip=chip)

    def embed_chip(self, chip: np.ndarray) -> np.ndarray:
        vector: np.ndarray = self.embed_chips(chip[None])[0]
        return vector

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) aligned chips -> (N, 128) float32 descriptors (one batch)."""
        if self.net is not None:
            vectors: np.ndarray = self.net.forward(chips)
            return vectors
        with self.models.dnn_lock:
            return np.asarray([self.models.resnet.compute_face_descriptor(c) for c in chips], dtype=np.float32)


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned face (150 px, so comparable between photos)."""
    gray = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY) if chip.ndim == 3 else chip
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def plain_dlib_faces(rgb: np.ndarray, models: DlibModels | None = None, upsample: int = 1
                     ) -> list[tuple[Any, np.ndarray]]:
    """The reference pipeline (face_recognition's defaults): HOG with one upsampling on the photo,
    5-point landmarks, the descriptor with one jitter (none). Used by the evaluation as the baseline."""
    m = models or load_models()
    out: list[tuple[Any, np.ndarray]] = []
    for rect in m.hog(rgb, upsample):
        shape = m.sp5(rgb, rect)
        with m.dnn_lock:
            out.append((rect, np.asarray(m.resnet.compute_face_descriptor(rgb, shape, 1), dtype=np.float32)))
    return out
