"""Head pose (yaw, pitch, roll) from dlib's 68 landmarks fitted to a generic 3-D face, and the frontal check.

**3-D model.** The anthropometric mean face of P. Martins and J. Batista, "Accurate single view
model-based head pose estimation" (IEEE FG 2008), published as ``glAnthropometric3DModel.cpp`` (ISR,
University of Coimbra) and in common use for dlib pose estimation (lincolnhard/head-pose-estimation).
It gives 14 of the iBUG 300-W / dlib 68 points (brow ends, eye corners, nose wings, mouth corners, lower
lip, chin); the numbers below are those coordinates (centimetres) rewritten in the camera convention used
here: x towards the image's right, y down, z away from the camera, for a frontal face seen with rotation
identity. The other 54 points (jaw line, inner brows, eyelids, nose bridge, inner lips) are not part of
the model: they are less stable under pose (the jaw contour slides along the cheek) and are not used.

**Camera.** Unknown, so a pinhole from the image size: focal length = the longer image side in pixels
(about 53 degrees across it, a normal lens), principal point at the image centre, no distortion.

**Fit.** ``cv2.solvePnP`` (EPnP for a start, then Levenberg-Marquardt on the reprojection error) gives
the rotation R from model to camera coordinates. A face away from the image centre is seen along an
oblique ray; R is taken relative to that ray (the rotation turning the optical axis onto the ray to the
head is undone), so a frontal face near an edge of a wide photo stays frontal.

**Angles.** R = Rz(roll) . Ry(-yaw) . Rx(-pitch) in the camera frame above (intrinsic z-y-x: roll applied
last), reported with the API's signs: **yaw** > 0 the nose turns towards the image's right, **pitch** > 0
looking up, **roll** > 0 the eye line runs down to the image's right (clockwise on screen), the same
sign as ``atan2`` of the eye line, so rotating a photo by +a degrees counter-clockwise changes roll by -a.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# dlib 68-point index -> (x, y, z) in cm: x right, y down, z away from the camera (frontal face)
MODEL_3D: dict[int, tuple[float, float, float]] = {
    17: (-6.825897, -6.760612, -4.402142),  # brow, outer end on the image's left
    21: (-1.330353, -7.122144, -6.903745),  # brow, inner end
    22: (1.330353, -7.122144, -6.903745),
    26: (6.825897, -6.760612, -4.402142),
    36: (-5.311432, -5.485328, -3.987654),  # eye corners
    39: (-1.789930, -5.393625, -4.413414),
    42: (1.789930, -5.393625, -4.413414),
    45: (5.311432, -5.485328, -3.987654),
    31: (-2.005628, -1.409845, -6.165652),  # nose wings
    35: (2.005628, -1.409845, -6.165652),
    48: (-2.774015, 2.080775, -5.048531),  # mouth corners
    54: (2.774015, 2.080775, -5.048531),
    57: (0.0, 3.116408, -6.097667),  # lower lip, centre
    8: (0.0, 7.415691, -4.070434),  # chin
}
MODEL_INDICES = np.array(list(MODEL_3D), dtype=np.int64)
MODEL_POINTS = np.array(list(MODEL_3D.values()), dtype=np.float64)


@dataclass(frozen=True)
class Pose:
    yaw: float
    pitch: float
    roll: float
    reprojection_px: float = 0.0  # RMS reprojection error of the fit, in pixels of the analysed image

    def as_dict(self) -> dict[str, float]:
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2)}


@dataclass(frozen=True)
class PoseTolerance:
    """Largest absolute angles (degrees) of a face still called frontal."""

    max_yaw: float = 30.0
    max_pitch: float = 30.0
    max_roll: float = 30.0

    def violations(self, pose: Pose) -> list[str]:
        out = []
        for axis, limit in (("yaw", self.max_yaw), ("pitch", self.max_pitch), ("roll", self.max_roll)):
            value = getattr(pose, axis)
            if abs(value) > limit:
                out.append(f"{axis} {value:+.1f} deg exceeds +-{limit:g}")
        return out

    def is_frontal(self, pose: Pose) -> bool:
        return not self.violations(pose)


def camera_matrix(width: int, height: int) -> np.ndarray:
    f = float(max(width, height))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The model-to-camera rotation of a head at these angles (degrees, the API's signs)."""
    y, p, r = (math.radians(v) for v in (-yaw, -pitch, roll))
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    return np.asarray(rz @ ry @ rx)


def angles(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a rotation, inverse of :func:`rotation_matrix`."""
    beta = math.asin(max(-1.0, min(1.0, -float(rot[2, 0]))))
    alpha = math.atan2(float(rot[2, 1]), float(rot[2, 2]))
    gamma = math.atan2(float(rot[1, 0]), float(rot[0, 0]))
    return -math.degrees(beta), -math.degrees(alpha), math.degrees(gamma)


def _ray_rotation(t: np.ndarray) -> np.ndarray:
    """The rotation turning the optical axis (0, 0, 1) onto the direction of ``t``."""
    z = np.array([0.0, 0.0, 1.0])
    d = t / max(float(np.linalg.norm(t)), 1e-12)
    axis = np.cross(z, d)
    s = float(np.linalg.norm(axis))
    if s < 1e-12:
        return np.eye(3)
    angle = math.atan2(s, float(z @ d))
    return cv2.Rodrigues(axis / s * angle)[0]


def _frontal_start(image_pts: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Translation of a frontal model whose outer eye corners fall where the image's do."""
    eye_px = max(float(np.linalg.norm(image_pts[7] - image_pts[4])), 1.0)  # points 45 and 36
    z = cam[0, 0] * float(MODEL_POINTS[7, 0] - MODEL_POINTS[4, 0]) / eye_px
    c = image_pts.mean(axis=0)
    return np.array([[(c[0] - cam[0, 2]) * z / cam[0, 0]], [(c[1] - cam[1, 2]) * z / cam[1, 1]], [z]])


def estimate_pose(points68: np.ndarray, width: int, height: int) -> Pose:
    """Yaw, pitch and roll in degrees from 68 x 2 dlib landmarks in an image of ``width`` x ``height``."""
    image_pts = np.asarray(points68, dtype=np.float64).reshape(68, 2)[MODEL_INDICES]
    cam = camera_matrix(width, height)
    dist = np.zeros(4)
    ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_pts, cam, dist, flags=cv2.SOLVEPNP_EPNP)
    if not ok or float(tvec[2, 0]) <= 0:  # EPnP can land behind the camera on odd points: start frontal
        rvec, tvec = np.zeros((3, 1)), _frontal_start(image_pts, cam)
    ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, image_pts, cam, dist, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    rot = cv2.Rodrigues(rvec)[0]
    relative = _ray_rotation(tvec.ravel()).T @ rot
    yaw, pitch, roll = angles(relative)
    projected = cv2.projectPoints(MODEL_POINTS, rvec, tvec, cam, dist)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((projected - image_pts) ** 2, axis=1))))
    return Pose(yaw, pitch, roll, rms)


def project_model(yaw: float, pitch: float, roll: float, width: int = 640, height: int = 480,
                  distance_cm: float = 60.0, centre: tuple[float, float] | None = None) -> np.ndarray:
    """68 x 2 image points of the model at a known pose (unmodelled points at the model's centroid): the
    forward model, for tests and the benchmark's synthetic check."""
    cam = camera_matrix(width, height)
    cx, cy = centre if centre is not None else (width / 2.0, height / 2.0)
    ray = np.array([(cx - cam[0, 2]) / cam[0, 0], (cy - cam[1, 2]) / cam[1, 1], 1.0])
    t = ray / np.linalg.norm(ray) * distance_cm
    rot = _ray_rotation(t) @ rotation_matrix(yaw, pitch, roll)
    rvec = cv2.Rodrigues(rot)[0]
    pts = cv2.projectPoints(MODEL_POINTS, rvec, t.reshape(3, 1), cam, np.zeros(4))[0].reshape(-1, 2)
    out = np.tile(pts.mean(axis=0), (68, 1))
    out[MODEL_INDICES] = pts
    return out
