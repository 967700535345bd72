"""Head pose (yaw, pitch, roll) estimated from MTCNN's five landmarks, and the frontal check.

Model (a weak-perspective view of a rigid face):

* **roll** is the angle of the line through the two eyes against the horizontal.
* The landmarks are rotated by -roll about the eye midpoint. The face's midline then joins the eye
  midpoint E and the mouth midpoint M; eyes and mouth corners lie roughly in one plane, the nose tip
  stands ``NOSE_DEPTH`` half-eye-distances in front of it.
* **yaw**: turning the head by yaw moves the nose tip sideways off the midline by depth * sin(yaw)
  while the half eye distance shrinks with cos(yaw), so yaw = atan(offset / (half eye distance *
  NOSE_DEPTH)), offset measured horizontally from the midline at the nose's height.
* **pitch**: nodding moves the nose tip along the midline. On a frontal face it sits at
  ``NOSE_LEVEL`` of the way from E to M; pitch = asin((NOSE_LEVEL - t) * |EM| / depth), t its actual
  position, depth = NOSE_DEPTH half eye distances (positive pitch: looking up).

NOSE_DEPTH and NOSE_LEVEL are average human proportions (nose tip about 0.7 half eye distances in front
of the eye/mouth-corner plane; MTCNN places the nose tip of a level, frontal face about 0.55 of the way from the
eye line to the mouth line). Estimates are coarse (about +-10 degrees) and meant for a frontal/non-frontal
decision, not for measuring angles. Sign: positive yaw = nose towards the image's right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NOSE_DEPTH = 0.7
NOSE_LEVEL = 0.55


@dataclass(frozen=True)
class Pose:
    yaw: float
    pitch: float
    roll: float

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


def estimate_pose(landmarks: np.ndarray) -> Pose:
    """Yaw, pitch and roll in degrees from 5 x 2 landmarks (left eye, right eye, nose, mouth left,
    mouth right, as seen in the image)."""
    pts = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye, nose, mouth_l, mouth_r = pts
    dx, dy = right_eye - left_eye
    roll = math.degrees(math.atan2(dy, dx))
    eye_mid = (left_eye + right_eye) / 2
    c, s = math.cos(-math.radians(roll)), math.sin(-math.radians(roll))
    rot = np.array([[c, -s], [s, c]])
    p = (pts - eye_mid) @ rot.T  # eye midpoint at the origin, eyes on the x axis
    half_eye = max(abs(p[1, 0] - p[0, 0]) / 2, 1e-6)
    nose_p = p[2]
    mouth_mid = (p[3] + p[4]) / 2
    em = float(np.hypot(*mouth_mid))
    if em < 1e-6:
        return Pose(90.0, 0.0, roll)
    t = float(nose_p @ mouth_mid) / (em * em)  # nose position along E -> M
    # horizontal offset of the nose from the midline, at the nose's height
    midline_x = mouth_mid[0] * (nose_p[1] / mouth_mid[1]) if abs(mouth_mid[1]) > 1e-6 else 0.0
    offset = nose_p[0] - midline_x
    depth = NOSE_DEPTH * half_eye
    yaw = math.degrees(math.atan2(offset, depth))
    # with yaw the apparent depth along the midline shrinks with cos(yaw)
    sin_pitch = (NOSE_LEVEL - t) * em / max(depth * max(math.cos(math.radians(yaw)), 0.2), 1e-6)
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, sin_pitch))))
    return Pose(yaw, pitch, roll)
