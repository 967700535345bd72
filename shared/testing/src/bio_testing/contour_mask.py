"""Helpers for tests and the benchmark of the contour-mask service: test support, kept out of the runtime
package (a module, not a conftest, so the importlib-mode test folder can import it by name). Never imports
pytest."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bio_contour_mask.engine import landmarks as LM
from bio_contour_mask.engine.align import pixel_matrix

CELEBA_SAMPLES = ["0", "1", "2", "3"]
LARGE = ("skin", "hair")
SMALL = ("left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "upper_lip", "lower_lip")


def read_pts(path: Path) -> np.ndarray:
    """An IBUG .pts file: 68 lines 'x y' between braces."""
    lines = path.read_text().split("{", 1)[1].split("}", 1)[0].split()
    return np.asarray(lines, np.float64).reshape(-1, 2)


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def load_labels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def rotation(width: int, height: int, angle_deg: float) -> tuple[np.ndarray, int, int]:
    """A rotation about the image centre (counter-clockwise on screen) into an expanded canvas: 2x3 matrix
    in pixel-edge coordinates and the new size."""
    t = np.deg2rad(angle_deg)
    c, s = np.cos(t), np.sin(t)
    rot = np.array([[c, s], [-s, c]])
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64) - [width / 2, height / 2]
    rc = corners @ rot.T
    nw, nh = int(np.ceil(np.ptp(rc[:, 0]))), int(np.ceil(np.ptp(rc[:, 1])))
    off = np.array([nw / 2, nh / 2]) - rot @ np.array([width / 2, height / 2])
    return np.hstack([rot, off[:, None]]), nw, nh


def rotate(rgb: np.ndarray, m: np.ndarray, w: int, h: int, nearest: bool = False) -> np.ndarray:
    return cv2.warpAffine(rgb, pixel_matrix(m), (w, h), flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _resample_closed(poly: np.ndarray, n: int, closed: bool = True) -> np.ndarray:
    pts = np.vstack([poly, poly[:1]]) if closed else poly
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    total = s[-1]
    at = np.linspace(0, total, n, endpoint=not closed) if not closed else np.linspace(0, total, n, endpoint=False)
    x = np.interp(at, s, pts[:, 0])
    y = np.interp(at, s, pts[:, 1])
    return np.stack([x, y], axis=1)


def mediapipe_from_ibug(p: np.ndarray, with_irises: bool = True) -> np.ndarray:
    """A MediaPipe-style 478-point (or 468) set built from 68 iBUG points: the points of the contour rings
    (face oval, eyes, brows, lips), the nose and the irises put where MediaPipe puts them; the other points
    of the mesh inside the face (at the nose tip)."""
    n = 478 if with_irises else 468
    out = np.tile(p[30], (n, 1)).astype(np.float64)
    raised = LM.raised_brows(p)  # 26..17 raised
    top = (raised[4] + raised[5]) / 2
    oval = np.vstack([top, raised[4::-1], p[16::-1], raised[9:4:-1]])
    out[LM.MP_FACE_OVAL] = _resample_closed(oval, len(LM.MP_FACE_OVAL))
    out[LM.MP_RIGHT_EYE] = _resample_closed(p[[36, 37, 38, 39, 40, 41]], 16)
    out[LM.MP_LEFT_EYE] = _resample_closed(p[[45, 44, 43, 42, 47, 46]], 16)
    rb = LM.brow_band(p[17:22], p[36:42].mean(axis=0))
    lb = LM.brow_band(p[26:21:-1], p[42:48].mean(axis=0))
    out[LM.MP_RIGHT_BROW] = rb
    out[LM.MP_LEFT_BROW] = lb
    out[LM.MP_OUTER_UPPER] = _resample_closed(p[48:55], 11, closed=False)
    out[LM.MP_OUTER_LOWER] = _resample_closed(p[[54, 55, 56, 57, 58, 59, 48]], 11, closed=False)[:10]
    out[LM.MP_INNER_UPPER] = _resample_closed(p[60:65], 11, closed=False)
    out[LM.MP_INNER_LOWER] = _resample_closed(p[[64, 65, 66, 67, 60]], 11, closed=False)[:10]
    nose = {168: 27, 4: 30, 1: 30, 19: 33, 94: 33, 2: 33, 98: 32, 97: 32, 326: 34, 327: 34, 294: 35, 278: 35,
            48: 31, 64: 31, 6: 28, 197: 28, 195: 29, 5: 29}
    for mp, ib in nose.items():
        out[mp] = p[ib]
    for mp, (a, b) in {344: (35, 29), 440: (35, 28), 275: (35, 30), 45: (31, 30), 220: (31, 28),
                       115: (31, 29)}.items():
        out[mp] = (p[a] + p[b]) / 2
    if with_irises:
        for centre_idx, ring, eye in ((468, LM.MP_RIGHT_IRIS, p[36:42]), (473, LM.MP_LEFT_IRIS, p[42:48])):
            c = eye.mean(axis=0)
            r = 0.18 * np.linalg.norm(eye[3] - eye[0])
            out[centre_idx] = c
            out[ring] = c + r * np.array([[1, 0], [0, -1], [-1, 0], [0, 1]])
    return out
