"""Landmark schemes (iBUG 68, MediaPipe 468/478), told apart by their point count, and the facial regions
each scheme defines, as closed rings of point indices.

Left and right are always the **subject's**: ``left_eye`` is the person's left eye, which appears on the
right of an unmirrored frontal photo. In the iBUG 300-W scheme points 36-41 (and brow 17-21) are the
subject's right eye (and brow); in MediaPipe ``FACEMESH_LEFT_EYE`` (263, 362, ...) is the subject's left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bio_contour_mask.engine.errors import InputError

SCHEME_BY_COUNT = {68: "ibug68", 468: "mediapipe468", 478: "mediapipe478"}
EXPECTED = "68 points (dlib / iBUG 300-W scheme), or 468 or 478 points (MediaPipe face mesh, 478 with irises)"

# -- iBUG 300-W 68 points (0-based) ---------------------------------------------------------------------
IBUG_JAW = list(range(0, 17))
IBUG_RIGHT_BROW = list(range(17, 22))  # subject's right (image left in a frontal photo)
IBUG_LEFT_BROW = list(range(22, 27))
IBUG_RIGHT_EYE = list(range(36, 42))
IBUG_LEFT_EYE = list(range(42, 48))
IBUG_REGIONS: dict[str, list[int]] = {
    "right_eye": IBUG_RIGHT_EYE,
    "left_eye": IBUG_LEFT_EYE,
    "nose": [27, 35, 34, 33, 32, 31],
    "mouth": list(range(48, 60)),
    "upper_lip": [48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60],
    "lower_lip": [54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64],
    "inner_mouth": list(range(60, 68)),
}

# -- MediaPipe face mesh (FACEMESH_* connections of mediapipe/python/solutions/face_mesh_connections.py) -
MP_FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
                148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
MP_RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
MP_LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
MP_RIGHT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
MP_LEFT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
MP_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
MP_OUTER_LOWER = [291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
MP_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
MP_INNER_LOWER = [308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
MP_NOSE = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 294, 278, 344, 440, 275, 45, 220, 115, 48, 64]
MP_RIGHT_IRIS = [469, 470, 471, 472]  # 468 is its centre
MP_LEFT_IRIS = [474, 475, 476, 477]  # 473 is its centre
MP_REGIONS: dict[str, list[int]] = {
    "face_oval": MP_FACE_OVAL,
    "right_eyebrow": MP_RIGHT_BROW,
    "left_eyebrow": MP_LEFT_BROW,
    "right_eye": MP_RIGHT_EYE,
    "left_eye": MP_LEFT_EYE,
    "mouth": MP_OUTER_UPPER[:-1] + MP_OUTER_LOWER,  # outer lip line, corner 61 round to corner 291 and back
    "upper_lip": MP_OUTER_UPPER + MP_INNER_UPPER[::-1],
    "lower_lip": MP_OUTER_LOWER + [61, 78] + MP_INNER_LOWER[::-1],
    "inner_mouth": MP_INNER_UPPER + MP_INNER_LOWER[1:],
}

LANDMARK_REGION_NAMES = ("face_oval", "right_eyebrow", "left_eyebrow", "right_eye", "left_eye", "nose",
                         "mouth", "upper_lip", "lower_lip", "inner_mouth", "right_iris", "left_iris")


@dataclass(frozen=True)
class Landmarks:
    points: np.ndarray  # Nx2 float64, image coordinates (x right, y down; (0, 0) = top-left corner)
    scheme: str  # ibug68, mediapipe468, mediapipe478

    @property
    def right_eye_centre(self) -> np.ndarray:
        idx = IBUG_RIGHT_EYE if self.scheme == "ibug68" else MP_RIGHT_EYE
        return np.asarray(self.points[idx].mean(axis=0))

    @property
    def left_eye_centre(self) -> np.ndarray:
        idx = IBUG_LEFT_EYE if self.scheme == "ibug68" else MP_LEFT_EYE
        return np.asarray(self.points[idx].mean(axis=0))

    def transformed(self, matrix: np.ndarray) -> Landmarks:
        pts = self.points @ matrix[:, :2].T + matrix[:, 2]
        return Landmarks(pts, self.scheme)

    def face_points(self) -> np.ndarray:
        """The points that outline the face, for the alignment crop."""
        if self.scheme == "ibug68":
            return np.vstack([self.points[:27], raised_brows(self.points)])
        return self.points[MP_FACE_OVAL]


def raised_brows(points: np.ndarray) -> np.ndarray:
    """The 68-point scheme stops at the brows: the forehead line of the face oval is the brow line (26..17)
    raised, perpendicular to the eye line, by 40% of the nose-bridge-to-chin distance towards the top of the head."""
    eye_r, eye_l = points[IBUG_RIGHT_EYE].mean(axis=0), points[IBUG_LEFT_EYE].mean(axis=0)
    d = eye_l - eye_r
    up = np.array([d[1], -d[0]]) / max(np.linalg.norm(d), 1e-9)  # perpendicular, towards the forehead
    if np.dot(points[27] - points[8], up) < 0:
        up = -up
    lift = 0.4 * np.linalg.norm(points[27] - points[8])
    brows = points[[26, 25, 24, 23, 22, 21, 20, 19, 18, 17]]
    # raise the middle of the line most (a forehead arc), the outer ends less
    weights = np.array([0.35, 0.7, 0.9, 1.0, 1.0, 1.0, 1.0, 0.9, 0.7, 0.35])
    return np.asarray(brows + (lift * weights)[:, None] * up)


def brow_band(line: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """68-point brows are a single line of 5 points: a closed band whose lower edge runs towards the eye,
    with a thickness of 18% of the brow length, tapering at the outer end."""
    length = float(np.linalg.norm(line[-1] - line[0]))
    centre = line.mean(axis=0)
    down = eye - centre
    down = down / max(np.linalg.norm(down), 1e-9)
    thickness = 0.18 * length * np.array([0.5, 0.9, 1.0, 1.0, 0.9])
    if np.linalg.norm(line[0] - eye) < np.linalg.norm(line[-1] - eye):  # keep the taper at the temple side
        thickness = thickness[::-1]
    lower = line + thickness[:, None] * down
    return np.vstack([line, lower[::-1]])


def parse_landmarks(raw: Any, width: int, height: int, normalized: bool = False) -> Landmarks:
    """Validate a list of ``{x, y}`` (or ``[x, y]``) points against the schemes and the image bounds."""
    if not isinstance(raw, (list, tuple)):
        raise InputError(f"landmarks must be a list of {{x, y}} points: {EXPECTED}", "invalid_landmarks")
    n = len(raw)
    scheme = SCHEME_BY_COUNT.get(n)
    if scheme is None:
        raise InputError(f"got {n} landmarks; expected {EXPECTED}", "bad_landmark_count",
                         {"count": n, "expected": sorted(SCHEME_BY_COUNT)})
    pts = np.empty((n, 2), np.float64)
    for i, p in enumerate(raw):
        try:
            if isinstance(p, dict):
                x, y = p["x"], p["y"]
            else:
                x, y = p[0], p[1]
            pts[i] = (float(x), float(y))
        except (KeyError, IndexError, TypeError, ValueError, OverflowError):
            raise InputError(f"landmark {i} is not an {{x, y}} point with numeric coordinates",
                             "invalid_landmarks", {"index": i}) from None
    if not np.all(np.isfinite(pts)):
        raise InputError("landmark coordinates must be finite numbers", "invalid_landmarks")
    if normalized:
        pts = pts * np.array([width, height], np.float64)
    outside = np.flatnonzero((pts[:, 0] < 0) | (pts[:, 1] < 0) | (pts[:, 0] > width) | (pts[:, 1] > height))
    if outside.size:
        unit = "normalised to [0, 1]" if normalized else f"pixels, 0 <= x <= {width} and 0 <= y <= {height}"
        raise InputError(f"{outside.size} landmark(s) lie outside the {width}x{height} image; expected points "
                         f"inside it ({unit})", "landmarks_outside_image",
                         {"indices": outside[:20].tolist(), "width": width, "height": height})
    check_geometry(pts, scheme)
    return Landmarks(pts, scheme)


MIN_FACE_EXTENT_PX = 8.0  # smaller point sets give no usable regions (and an absurd alignment scale)
MIN_SPREAD_RATIO = 0.05  # smaller axis of the point cloud over its larger one: below it, the points are on a line
MIN_DISTINCT_SHARE = 0.1  # closed lips and eyes (and meshes mapped from 68 points) make many points coincide


def check_geometry(pts: np.ndarray, scheme: str) -> None:
    """Refuse point sets no face has: mostly coincident points, collinear points, a face a few pixels big, or
    both eyes in one place (the alignment divides by the eye distance)."""
    n = len(pts)
    distinct = len(np.unique(np.round(pts, 3), axis=0))
    extent = pts.max(axis=0) - pts.min(axis=0)
    centred = pts - pts.mean(axis=0)
    sv = np.linalg.svd(centred, compute_uv=False)
    lm = Landmarks(pts, scheme)
    eye_distance = float(np.linalg.norm(lm.left_eye_centre - lm.right_eye_centre))
    problems = []
    if distinct < MIN_DISTINCT_SHARE * n:
        problems.append(f"only {distinct} of {n} points are distinct")
    if float(extent.min()) < MIN_FACE_EXTENT_PX:
        problems.append(f"the points span {extent[0]:.1f} x {extent[1]:.1f} px (at least {MIN_FACE_EXTENT_PX:g} px "
                        "each way)")
    elif sv[0] <= 0 or sv[1] / sv[0] < MIN_SPREAD_RATIO:
        problems.append("the points lie on a line")
    if eye_distance < 0.1 * max(float(extent.max()), 1e-9):
        problems.append("the two eyes are at the same place")
    if problems:
        raise InputError(f"the landmarks do not describe a face: {'; '.join(problems)}", "degenerate_landmarks",
                         {"distinct_points": distinct, "extent_px": [round(float(v), 2) for v in extent],
                          "eye_distance_px": round(eye_distance, 2)})


def landmark_rings(lm: Landmarks) -> dict[str, np.ndarray]:
    """Closed rings (Kx2, image coordinates) of the regions the scheme defines, by subject-side names."""
    p = lm.points
    rings: dict[str, np.ndarray] = {}
    if lm.scheme == "ibug68":
        rings["face_oval"] = np.vstack([p[IBUG_JAW], raised_brows(p)])
        rings["right_eyebrow"] = brow_band(p[IBUG_RIGHT_BROW], p[IBUG_RIGHT_EYE].mean(axis=0))
        rings["left_eyebrow"] = brow_band(p[IBUG_LEFT_BROW], p[IBUG_LEFT_EYE].mean(axis=0))
        for name, idx in IBUG_REGIONS.items():
            rings[name] = p[idx]
    else:
        for name, idx in MP_REGIONS.items():
            rings[name] = p[idx]
        rings["nose"] = convex_hull(p[MP_NOSE])
        if lm.scheme == "mediapipe478":
            rings["right_iris"] = p[MP_RIGHT_IRIS]
            rings["left_iris"] = p[MP_LEFT_IRIS]
    return {k: v.astype(np.float64) for k, v in rings.items()}


def convex_hull(points: np.ndarray) -> np.ndarray:
    import cv2

    hull = cv2.convexHull(points.astype(np.float32))
    return hull.reshape(-1, 2).astype(np.float64)
