"""Alignment: rotate the face upright by its eye line and crop a square box around it with a margin.

The transform is a 2x3 similarity matrix from original-image coordinates to aligned-crop coordinates (both
with (0, 0) at the top-left corner of the top-left pixel); its inverse maps results back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Alignment:
    matrix: np.ndarray  # 2x3, original -> aligned
    size: int
    angle_deg: float  # rotation applied to make the eye line horizontal
    scale: float

    @property
    def inverse(self) -> np.ndarray:
        return invert(self.matrix)

    def compose(self, other: np.ndarray) -> np.ndarray:
        """This alignment after ``other`` (2x3): maps what ``other`` maps from, into the aligned crop."""
        return compose(self.matrix, other)


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m.astype(np.float64))


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a after b, both 2x3."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return np.asarray((a3 @ b3)[:2])


def compute_alignment(eye_right: np.ndarray, eye_left: np.ndarray, face_points: np.ndarray, size: int,
                      margin: float) -> Alignment:
    """``eye_right``/``eye_left`` are the subject's eyes: after the rotation the subject's right eye is on the
    left of the crop, as in an upright frontal photo, whatever the input orientation."""
    d = eye_left - eye_right
    theta = math.atan2(d[1], d[0])
    c, s = math.cos(-theta), math.sin(-theta)
    rot = np.array([[c, -s], [s, c]])
    q = face_points @ rot.T
    lo, hi = q.min(axis=0), q.max(axis=0)
    centre = (lo + hi) / 2
    side = max(float((hi - lo).max()), 1.0) * (1 + 2 * margin)
    k = size / side
    a = k * rot
    b = np.array([size / 2, size / 2]) - k * centre
    return Alignment(np.hstack([a, b[:, None]]), size, math.degrees(theta), k)


def pixel_matrix(m: np.ndarray) -> np.ndarray:
    """The same transform for OpenCV's pixel-centre convention (index i has its centre at i)."""
    a, b = m[:, :2], m[:, 2]
    return np.hstack([a, (a @ np.array([0.5, 0.5]) + b - 0.5)[:, None]])


def warp_image(rgb: np.ndarray, al: Alignment) -> np.ndarray:
    return cv2.warpAffine(rgb, pixel_matrix(al.matrix), (al.size, al.size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def warp_labels(labels: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(labels, pixel_matrix(m), (size, size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def scale_matrix(sx: float, sy: float) -> np.ndarray:
    return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]])
