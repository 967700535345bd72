"""Transformed development sets made from real prints (leave-one-database-out needs sets a setting was
not chosen on, and the hard case, small prints with few minutiae, has to be simulated).

* ``small``: every impression rotated (+-15 deg) and cropped to a window of 55-70 % of its area around a
  randomly moved centre of the print, the way a smaller sensor sees the finger (no downscaling: the
  resolution stays 500 dpi). Two impressions of a finger then overlap on only part of their area.
* ``tiny``: the same with windows of 38-52 % (about 20-25 LEADER minutiae per print, like the smaller
  sensors of other FVC-class sets).
* ``distorted``: full-size impressions under elastic skin distortion, rotation and, for half of them,
  contrast loss (the distortion generator's ``elastic``, ``rotation`` and ``low_contrast``).

Every image gets its own seed (set seed x image index), so a set is reproducible.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bio_fingerprint.engine.distortion import Params, elastic, low_contrast

KINDS = ("small", "tiny", "distorted")


def _background(img: np.ndarray) -> int:
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return int(np.median(border))


def _print_centre(img: np.ndarray) -> tuple[float, float]:
    """Centre of the ridge area: blocks with local contrast (the border is flat background)."""
    a = img.astype(np.float32)
    var = cv2.blur(a * a, (15, 15)) - cv2.blur(a, (15, 15)) ** 2
    ys, xs = np.nonzero(var > 0.5 * np.percentile(var, 90))
    h, w = img.shape
    return (float(xs.mean()), float(ys.mean())) if len(xs) else (w / 2, h / 2)


def small_print(img: np.ndarray, rng: np.random.Generator, area: tuple[float, float] = (0.55, 0.7),
                max_rot: float = 15.0, max_shift: float = 0.12) -> tuple[np.ndarray, Params]:
    h, w = img.shape
    angle = float(rng.uniform(-max_rot, max_rot))
    cx, cy = _print_centre(img)
    rot = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    turned = cv2.warpAffine(img, rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=_background(img))
    frac = float(rng.uniform(*area))
    aspect = float(rng.uniform(0.85, 1.15))
    cw = int(min(w, round(w * np.sqrt(frac) * aspect)))
    ch = int(min(h, round(h * frac * w / cw)))
    cx += rng.uniform(-max_shift, max_shift) * w
    cy += rng.uniform(-max_shift, max_shift) * h
    x0 = int(np.clip(round(cx - cw / 2), 0, w - cw))
    y0 = int(np.clip(round(cy - ch / 2), 0, h - ch))
    out = np.ascontiguousarray(turned[y0:y0 + ch, x0:x0 + cw])
    return out, {"angle_deg": round(angle, 2), "window": [x0, y0, cw, ch], "area": round(cw * ch / (w * h), 3)}


def crop_window(img: np.ndarray, params: Params) -> np.ndarray:
    """The window small_print cut (its params), as 4 corners in the coordinates of the impression img it
    was cut from (the crop is taken after turning the impression about its print centre)."""
    turn = cv2.getRotationMatrix2D(_print_centre(img), float(params["angle_deg"]), 1.0)
    back = cv2.invertAffineTransform(turn)
    x0, y0, cw, ch = (float(v) for v in params["window"])
    corners = np.array([[x0, y0], [x0 + cw, y0], [x0 + cw, y0 + ch], [x0, y0 + ch]])
    return corners @ back[:, :2].T + back[:, 2]


def distorted_print(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Params]:
    out, p = elastic(img, rng, alpha=(6.0, 14.0))
    h, w = img.shape
    angle = float(rng.uniform(-25, 25))
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    out = cv2.warpAffine(out, rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=_background(img))
    p["angle_deg"] = round(angle, 2)
    if rng.random() < 0.5:
        out, q = low_contrast(out, rng)
        p.update(q)
    return out, p


def transform(img: np.ndarray, kind: str, seed: int) -> tuple[np.ndarray, Params]:
    rng = np.random.default_rng(seed)
    if kind == "small":
        return small_print(img, rng)
    if kind == "tiny":
        return small_print(img, rng, area=(0.38, 0.52))
    if kind == "distorted":
        return distorted_print(img, rng)
    raise ValueError(f"unknown development set kind {kind!r}; known: {list(KINDS)}")


def read_set(folder: Path) -> list[dict[str, Any]]:
    """The rows of a set write_set made: image, finger_id, source (the impression's file name) and its
    transform's params (parsed back from their repr)."""
    with open(folder / "truth.csv", newline="") as fh:
        return [dict(row, params=ast.literal_eval(row["params"])) for row in csv.DictReader(fh)]


def write_set(rows: list[tuple[Path, str]], out_dir: Path, kind: str, seed: int = 0) -> Path:
    """Transformed copies of (image, finger) rows as PNGs with a truth.csv (image,finger_id,source,params):
    a folder ``bio-fingerprint evaluate`` reads like any other."""
    from bio_shared.images import decode_image

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "truth.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["image", "finger_id", "source", "params"])
        for i, (path, finger) in enumerate(rows):
            gray = decode_image(path.read_bytes(), mode="gray", max_bytes=1 << 30).pixels
            img, params = transform(gray, kind, seed * 100_003 + i)
            name = f"{i:04d}_{path.stem}.png"
            cv2.imwrite(str(out_dir / name), img)
            wr.writerow([name, finger, path.name, repr(params)])
    return out_dir
