"""Synthetic distortions of clean prints, each seeded and parameterised, and a labelled-dataset writer.

Geometric distortions (rotation, translation, partial, elastic) model placement and skin elasticity;
appearance distortions (noise, blur, smudge, dry, wet, low_contrast) model capture conditions. All
take and return uint8 grayscale images of the same size, ridges dark on a light background.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Rng = np.random.Generator
Params = dict[str, Any]  # what a distortion did (written to labels.csv)


def _background(img: np.ndarray) -> int:
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    return int(np.median(border))


def rotation(img: np.ndarray, rng: Rng, max_deg: float = 35.0) -> tuple[np.ndarray, Params]:
    angle = float(rng.uniform(-max_deg, max_deg))
    h, w = img.shape
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    out = cv2.warpAffine(img, mat, (w, h), flags=cv2.INTER_LINEAR, borderValue=_background(img))
    return out, {"angle_deg": round(angle, 2)}


def translation(img: np.ndarray, rng: Rng, max_frac: float = 0.15) -> tuple[np.ndarray, Params]:
    h, w = img.shape
    dx, dy = (int(rng.uniform(-max_frac, max_frac) * w), int(rng.uniform(-max_frac, max_frac) * h))
    mat = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    return cv2.warpAffine(img, mat, (w, h), borderValue=_background(img)), {"dx": dx, "dy": dy}


def partial(img: np.ndarray, rng: Rng, keep: tuple[float, float] = (0.45, 0.7)) -> tuple[np.ndarray, Params]:
    """Only part of the finger touched the sensor: the rest becomes background."""
    h, w = img.shape
    frac = float(rng.uniform(*keep))
    side = int(rng.integers(0, 4))
    out = np.full_like(img, _background(img))
    if side == 0:
        k = int(h * frac)
        out[:k] = img[:k]
    elif side == 1:
        k = int(h * frac)
        out[h - k:] = img[h - k:]
    elif side == 2:
        k = int(w * frac)
        out[:, :k] = img[:, :k]
    else:
        k = int(w * frac)
        out[:, w - k:] = img[:, w - k:]
    return out, {"kept_fraction": round(frac, 3), "side": ["top", "bottom", "left", "right"][side]}


def elastic(img: np.ndarray, rng: Rng, alpha: tuple[float, float] = (6.0, 12.0), sigma: float = 25.0
            ) -> tuple[np.ndarray, Params]:
    """Smooth random displacement field (skin stretched against the sensor)."""
    h, w = img.shape
    a = float(rng.uniform(*alpha))
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    dx *= a / (np.abs(dx).max() + 1e-6)
    dy *= a / (np.abs(dy).max() + 1e-6)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(img, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, {"max_displacement_px": round(a, 2)}


def noise(img: np.ndarray, rng: Rng, sigma: tuple[float, float] = (18.0, 40.0)) -> tuple[np.ndarray, Params]:
    s = float(rng.uniform(*sigma))
    out = img.astype(np.float32) + rng.normal(0, s, img.shape)
    sp = rng.random(img.shape)
    out[sp < 0.01] = 0
    out[sp > 0.99] = 255
    return np.clip(out, 0, 255).astype(np.uint8), {"sigma": round(s, 2)}


def blur(img: np.ndarray, rng: Rng, sigma: tuple[float, float] = (1.6, 3.2)) -> tuple[np.ndarray, Params]:
    s = float(rng.uniform(*sigma))
    if rng.random() < 0.5:
        return cv2.GaussianBlur(img, (0, 0), s), {"kind": "gaussian", "sigma": round(s, 2)}
    k = int(round(s * 4)) | 1
    kernel: NDArray[np.float32] = np.zeros((k, k), np.float32)
    kernel[k // 2] = 1.0 / k
    angle = float(rng.uniform(0, 180))
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), angle, 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, rot, (k, k)), np.float32)  # already float32: no copy
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(img, -1, kernel), {"kind": "motion", "length": k, "angle_deg": round(angle, 1)}


def smudge(img: np.ndarray, rng: Rng, blobs: tuple[int, int] = (2, 5)) -> tuple[np.ndarray, Params]:
    """Smeared patches: ridges lost under dark, blurred blotches."""
    h, w = img.shape
    n = int(rng.integers(*blobs))
    mask: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(n):
        c = (int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.2, 0.8) * h))
        axes = (int(rng.uniform(0.08, 0.2) * w), int(rng.uniform(0.05, 0.15) * h))
        cv2.ellipse(mask, c, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 6)
    smeared = cv2.GaussianBlur(img, (0, 0), 5).astype(np.float32) * 0.55
    out = img.astype(np.float32) * (1 - mask) + smeared * mask
    return np.clip(out, 0, 255).astype(np.uint8), {"blobs": n}


def dry(img: np.ndarray, rng: Rng) -> tuple[np.ndarray, Params]:
    """Dry skin: thin, faint, broken ridges."""
    k = int(rng.integers(2, 4))
    thin = cv2.dilate(img, np.ones((k, k), np.uint8))  # light valleys grow, dark ridges thin
    gaps = cv2.GaussianBlur(rng.random(img.shape).astype(np.float32), (0, 0), 2.0)
    gaps = (gaps > np.quantile(gaps, 0.7)).astype(np.float32)
    out = thin.astype(np.float32)
    out = out + gaps * (255 - out) * float(rng.uniform(0.5, 0.9))
    out = 255 - (255 - out) * float(rng.uniform(0.5, 0.75))
    return np.clip(out, 0, 255).astype(np.uint8), {"erosion": k}


def wet(img: np.ndarray, rng: Rng) -> tuple[np.ndarray, Params]:
    """Wet skin: thick ridges merging into dark areas."""
    k = int(rng.integers(3, 5))
    thick = cv2.erode(img, np.ones((k, k), np.uint8))  # dark ridges grow
    out = cv2.GaussianBlur(thick, (0, 0), 1.2).astype(np.float32) * float(rng.uniform(0.55, 0.8))
    return np.clip(out, 0, 255).astype(np.uint8), {"dilation": k}


def low_contrast(img: np.ndarray, rng: Rng) -> tuple[np.ndarray, Params]:
    span = float(rng.uniform(18, 45))
    center = float(rng.uniform(110, 200))
    out = center + (img.astype(np.float32) - 128.0) * span / 255.0
    return np.clip(out, 0, 255).astype(np.uint8), {"range": round(span, 1), "center": round(center, 1)}


def clean(img: np.ndarray, rng: Rng) -> tuple[np.ndarray, Params]:
    return img.copy(), {}


DISTORTIONS: dict[str, Callable[[np.ndarray, Rng], tuple[np.ndarray, Params]]] = {
    "clean": clean, "rotation": rotation, "translation": translation, "partial": partial, "elastic": elastic,
    "noise": noise, "blur": blur, "smudge": smudge, "dry": dry, "wet": wet, "low_contrast": low_contrast,
}


def distort(img: np.ndarray, kind: str, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    if kind not in DISTORTIONS:
        raise ValueError(f"unknown distortion {kind!r}; known: {sorted(DISTORTIONS)}")
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError("distort expects a uint8 grayscale image")
    return DISTORTIONS[kind](img, np.random.default_rng(seed))


def read_truth(folder: Path) -> list[tuple[Path, str]]:
    """(image path, finger id) rows of a folder's truth.csv (``image,finger_id``, extra columns ignored)."""
    rows = []
    with open(folder / "truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append((folder / row["image"], row["finger_id"]))
    return rows


def write_dataset(sources: list[Path], out_dir: Path, kinds: list[str] | None = None, per_kind: int = 1,
                  seed: int = 0) -> list[dict[str, Any]]:
    """Distort every source print with every kind (``per_kind`` variants each) and write PNGs plus a
    ``labels.csv`` (image, label, source, seed, params). Returns the rows."""
    from bio_shared.images import decode_image

    kinds = kinds or list(DISTORTIONS)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for si, src in enumerate(sources):
        gray = decode_image(src.read_bytes(), mode="gray").pixels
        for kind in kinds:
            for v in range(per_kind):
                s = seed * 1_000_003 + si * 1009 + v * 31 + sorted(DISTORTIONS).index(kind)
                img, params = distort(gray, kind, s)
                name = f"{kind}/{src.stem}_{si}_{v}.png"
                (out_dir / kind).mkdir(exist_ok=True)
                cv2.imwrite(str(out_dir / name), img)
                rows.append({"image": name, "label": kind, "source": src.name, "seed": s, "params": params})
    with open(out_dir / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "label", "source", "seed", "params"])
        for r in rows:
            w.writerow([r["image"], r["label"], r["source"], r["seed"], repr(r["params"])])
    return rows
