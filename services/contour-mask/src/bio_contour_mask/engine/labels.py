"""CelebAMask-HQ label maps: the 19 classes, the two class orders in use, region names and validation.

Two orders of the same 19 classes circulate:

* ``face-parsing`` (the order of the issue and of face-parsing.PyTorch / BiSeNet checkpoints):
  0 background, 1 skin, 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 6 eye_g, 7 l_ear, 8 r_ear, 9 ear_r, 10 nose,
  11 mouth, 12 u_lip, 13 l_lip, 14 neck, 15 neck_l, 16 cloth, 17 hair, 18 hat;
* ``celebamask-hq`` (the order of CelebAMask-HQ's own ``g_mask.py``, used by its sample masks and MaskGAN):
  0 background, 1 skin, 2 nose, 3 eye_g, 4 l_eye, 5 r_eye, 6 l_brow, 7 r_brow, 8 l_ear, 9 r_ear, 10 mouth,
  11 u_lip, 12 l_lip, 13 hair, 14 hat, 15 ear_r, 16 neck_l, 17 neck, 18 cloth.

``auto`` tells them apart from the geometry of the upright face: where each label sits relative to the eyes
(labels 4 and 5 are the eyes in both). CelebAMask-HQ's ``l_``/``r_`` are the subject's left and right
(``l_eye`` lies on the right of a frontal photo), so ``l_eye`` becomes the region ``left_eye``.
"""

from __future__ import annotations

import numpy as np

from bio_contour_mask.engine.errors import InputError

NUM_CLASSES = 19
FACE_PARSING_ORDER = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear",
                      "ear_r", "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat")
CELEBAMASK_ORDER = ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear",
                    "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
ORDERS = {"face-parsing": FACE_PARSING_ORDER, "celebamask-hq": CELEBAMASK_ORDER}

# class name -> region name (subject's left/right)
REGION_OF_CLASS = {
    "skin": "skin", "l_brow": "left_eyebrow", "r_brow": "right_eyebrow", "l_eye": "left_eye",
    "r_eye": "right_eye", "eye_g": "glasses", "l_ear": "left_ear", "r_ear": "right_ear", "ear_r": "earring",
    "nose": "nose", "mouth": "inner_mouth", "u_lip": "upper_lip", "l_lip": "lower_lip", "neck": "neck",
    "neck_l": "necklace", "cloth": "cloth", "hair": "hair", "hat": "hat",
}
# regions made of several classes
UNION_REGIONS = {
    "mouth": ("u_lip", "l_lip", "mouth"),
    "face_oval": ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip"),
    "ears": ("l_ear", "r_ear"),
}
MAP_REGION_NAMES = tuple(REGION_OF_CLASS.values()) + tuple(UNION_REGIONS)

# Expected vertical position of each class in an upright face, in inter-ocular distances below the eye line
# (negative: above), and a weight (how reliable that position is).
_EXPECTED_Y = {
    "l_brow": (-0.35, 1.0), "r_brow": (-0.35, 1.0), "nose": (0.55, 1.0), "mouth": (1.1, 1.0),
    "u_lip": (1.05, 1.0), "l_lip": (1.25, 1.0), "eye_g": (0.0, 0.7), "l_ear": (0.45, 0.5), "r_ear": (0.45, 0.5),
    "ear_r": (0.9, 0.3), "neck": (2.2, 0.7), "neck_l": (2.4, 0.3), "cloth": (3.0, 0.4), "hair": (-0.7, 0.5),
    "hat": (-1.5, 0.4),
}
EXPECTED_MAP = ("a single-channel PNG label map (8-bit gray or palette indices) with CelebAMask-HQ classes 0-18, "
                "1 = skin; the same aspect ratio as the image")


def validate_label_map(labels: np.ndarray, image_w: int, image_h: int) -> None:
    """Refuse what is not a face-parsing label map of this image (values, content, aspect ratio)."""
    h, w = labels.shape[:2]
    if labels.ndim != 2:
        raise InputError(f"the label map has {labels.shape[2]} channels; expected {EXPECTED_MAP}", "wrong_map_kind")
    counts = np.bincount(labels.ravel().astype(np.int64, copy=False)) if labels.size else np.zeros(1, np.int64)
    present = np.flatnonzero(counts)
    bad = present[present >= NUM_CLASSES]
    if bad.size:
        raise InputError(f"the label map holds values up to {int(present.max())}; expected {EXPECTED_MAP}",
                         "wrong_map_kind", {"unexpected_values": bad[:20].tolist()})
    if 1 not in present:
        raise InputError(f"the label map has no skin (class 1); expected {EXPECTED_MAP}", "wrong_map_kind",
                         {"classes": present.tolist()})
    if abs(w / h - image_w / image_h) > 0.02 * (image_w / image_h):
        raise InputError(f"the label map is {w}x{h} but the image is {image_w}x{image_h}: the aspect ratios differ "
                         f"(a map of another size is scaled, so it must keep the image's proportions)",
                         "map_size_mismatch", {"map": [w, h], "image": [image_w, image_h]})


def detect_order(labels: np.ndarray, to_upright: np.ndarray, eye_right: np.ndarray, eye_left: np.ndarray,
                 ) -> tuple[str, dict[str, float]]:
    """Which class order a map uses: each present class is placed in the upright face (2x3 ``to_upright``
    maps map pixels to an upright frame) and scored against where each order says it should be."""
    ys, xs = np.nonzero(labels > 1)
    values = labels[ys, xs]
    e_r = to_upright[:, :2] @ eye_right + to_upright[:, 2]
    e_l = to_upright[:, :2] @ eye_left + to_upright[:, 2]
    iod = max(float(np.linalg.norm(e_l - e_r)), 1e-6)
    eye_y = (e_r[1] + e_l[1]) / 2
    scores = {name: 0.0 for name in ORDERS}
    counts = np.bincount(values, minlength=NUM_CLASSES)
    for value in np.flatnonzero(counts):
        sel = values == value
        c = np.array([xs[sel].mean() + 0.5, ys[sel].mean() + 0.5])
        y = (to_upright[1, :2] @ c + to_upright[1, 2] - eye_y) / iod
        for name, order in ORDERS.items():
            cls = order[value]
            if cls in _EXPECTED_Y:
                expected, weight = _EXPECTED_Y[cls]
                scores[name] += weight * min(abs(y - expected), 3.0)
            elif cls in ("l_eye", "r_eye"):
                scores[name] += min(abs(y), 3.0)
    best = min(scores, key=lambda k: (scores[k], k != "face-parsing"))
    return best, scores


def label_value(order: str, cls: str) -> int:
    return ORDERS[order].index(cls)
