"""Ridge enhancement: segmentation, orientation field, ridge frequency, Gabor filtering, binarisation, thinning.

The steps come from pyfing (R. Cappelli) with its classic, fast algorithms by default (GMFS
segmentation, GBFOE orientations, XSFFE frequencies, GBFEN contextual Gabor filtering: about 150 ms
per 500 dpi print on one core); its learned counterparts (SUFS, SNFOE, SNFFE, SNFEN: about 1 s
together on one core) are selectable. Binarisation and thinning are ours (OpenCV ximgproc).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import cv2
import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")

SEGMENTATION = {"GMFS", "SUFS"}
ORIENTATION = {"GBFOE", "SNFOE"}
FREQUENCY = {"XSFFE", "SNFFE"}
ENHANCEMENT = {"GBFEN", "SNFEN"}
_lock = threading.Lock()  # pyfing keeps module-level algorithm singletons
# LEADER's detection threshold: its confidence that a pixel holds a minutia (pyfing's default is 0.6).
# ``bio-fingerprint bench-threshold`` (bio_fingerprint/bench_threshold.py) chose 0.25, with the matcher's
# weight 0.5 for minutiae under 60 % (matcher.UNRELIABLE_WEIGHT), on every family's tuning sets; leaving one
# database family out, the folds chose 0.25 / 0.2 / 0.25 and the held-out small / tiny prints' EER fell
# well below pyfing's default (figures in README.md). The less certain minutiae help most where a print
# has few; the quality score counts only those at pyfing's default (template.RELIABLE_QUALITY).
LEADER_THRESHOLD = 0.25
_keras_leader: dict[float, Any] = {}  # pyfing Leader per threshold (Keras backend)


@dataclass(frozen=True)
class EnhanceMethods:
    segmentation: str = "GMFS"
    orientation: str = "GBFOE"
    frequency: str = "XSFFE"
    enhancement: str = "GBFEN"

    @classmethod
    def preset(cls, name: str) -> EnhanceMethods:
        if name == "classic":
            return cls()
        if name == "learned":
            return cls("SUFS", "SNFOE", "SNFFE", "SNFEN")
        raise ValueError(f"unknown enhancement preset {name!r} (classic, learned)")

    def validate(self) -> None:
        for value, allowed in ((self.segmentation, SEGMENTATION), (self.orientation, ORIENTATION),
                               (self.frequency, FREQUENCY), (self.enhancement, ENHANCEMENT)):
            if value not in allowed:
                raise ValueError(f"unknown method {value!r}; allowed {sorted(allowed)}")


@dataclass
class Enhanced:
    gray: np.ndarray  # uint8 input (normalised)
    mask: np.ndarray  # uint8 0/255 foreground
    orientation: np.ndarray  # float32 radians per pixel (ridge orientation, [0, pi))
    period: np.ndarray  # float32 ridge period in pixels (0 outside the mask)
    enhanced: np.ndarray  # uint8, ridges dark on light valleys
    binary: np.ndarray  # uint8 0/1, 1 = ridge
    skeleton: np.ndarray  # uint8 0/1 one-pixel ridges


def _pyfing() -> ModuleType:
    import pyfing
    import torch

    from bio_shared.inference import configure_torch

    configure_torch()  # one torch thread per process on CPU (LEADER and the learned steps run on torch)
    torch.set_grad_enabled(False)
    return cast(ModuleType, pyfing)  # pyfing has no type information


def load(methods: EnhanceMethods | None = None) -> None:
    """Import pyfing and build the algorithms (and learned models) of ``methods`` once per process."""
    m = methods or EnhanceMethods()
    tiny = np.full((64, 64), 128, np.uint8)
    tiny[::8] = 30
    enhance(tiny, m)


def leader_minutiae(gray: np.ndarray, dpi: int = 500, threshold: float = LEADER_THRESHOLD) -> np.ndarray:
    """LEADER (pyfing's learned end-to-end minutiae extractor, shipped weights): (n, 5) float32 in our
    convention (pyfing's direction is counter-clockwise, ours is image-coordinate atan2, hence the sign).

    The network runs as a native torch module with pyfing's weights (``leader_torch``: same outputs,
    about 2.5x faster than the Keras model on one core); ``BIO_FINGERPRINT_LEADER_BACKEND=keras`` runs
    pyfing's own Keras model instead. ``threshold``: LEADER's detection confidence (LEADER_THRESHOLD)."""
    _pyfing()  # torch set up for inference (one thread), pyfing importable
    import torch

    if dpi == 500 and os.environ.get("BIO_FINGERPRINT_LEADER_BACKEND", "torch") != "keras":
        from bio_fingerprint.engine import leader_torch

        raw = leader_torch.run(gray, quality_threshold=threshold)
        out = np.empty((len(raw), 5), np.float32)
        out[:, :2] = raw[:, :2]
        out[:, 2] = np.mod(-raw[:, 2].astype(np.float64), 2 * np.pi)
        out[:, 3] = np.where(raw[:, 3] > 0, 1, 2)
        out[:, 4] = np.clip(np.round(raw[:, 4].astype(np.float64) * 100), 1, 100)
        return out
    with _lock, torch.no_grad():  # grad mode is per thread: request threads need it off too
        if threshold not in _keras_leader:
            from pyfing.minutiae_end_to_end import Leader, LeaderParameters

            _keras_leader[threshold] = Leader(LeaderParameters(minutia_quality_threshold=threshold))
        found = _keras_leader[threshold].run(gray, dpi)
    rows = [[m.x, m.y, (-float(m.direction)) % (2 * np.pi), 1 if m.type == "E" else (2 if m.type == "B" else 0),
             max(1.0, min(100.0, round(float(m.quality) * 100)))] for m in found]
    return np.asarray(rows, np.float32).reshape(-1, 5)


def orientation_map(gray: np.ndarray, mask: np.ndarray, dpi: int = 500) -> np.ndarray:
    """pyfing's GBFOE ridge orientation per pixel (radians, counter-clockwise, [0, pi)) of a normalised print
    and its foreground mask: the orientation field a template keeps (engine/orientation_field.py)."""
    pf = _pyfing()
    import torch

    with _lock, torch.no_grad():
        return np.asarray(pf.orientation_field_estimation(gray, mask, dpi=dpi, method="GBFOE"), np.float32)


def enhance(gray: np.ndarray, methods: EnhanceMethods | None = None, dpi: int = 500, ridges: bool = True) -> Enhanced:
    """All stages; with ``ridges=False`` only normalisation and segmentation (what LEADER minutiae and the
    quality score need: about 100 ms less per print when no enhanced image is wanted, e.g. for probes)."""
    m = methods or EnhanceMethods()
    m.validate()
    pf = _pyfing()
    from bio_fingerprint.engine.normalize import normalize_print

    g = normalize_print(gray)
    import torch

    with _lock, torch.no_grad():
        mask = pf.fingerprint_segmentation(g, dpi=dpi, method=m.segmentation)
        mask = np.where(mask > 0, 255, 0).astype(np.uint8)
        if mask.sum() == 0 or not ridges:
            orientation = np.zeros(g.shape, np.float32)
            period = np.zeros(g.shape, np.float32)
            enhanced = np.zeros(g.shape, np.uint8)  # (inverted below: white, no ridges)
        else:
            orientation = pf.orientation_field_estimation(g, mask, dpi=dpi, method=m.orientation)
            period = pf.frequency_estimation(g, orientation, mask, dpi=dpi, method=m.frequency)
            enhanced = pf.fingerprint_enhancement(g, orientation, period, mask, dpi=dpi, method=m.enhancement)
    enhanced = np.asarray(enhanced, np.uint8)  # pyfing: ridges bright, background black
    binary: np.ndarray = ((enhanced > 127) & (mask > 0)).astype(np.uint8)
    enhanced = np.where(mask > 0, 255 - enhanced, 255).astype(np.uint8)  # ridges dark on white, like ink
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    skeleton = (cv2.ximgproc.thinning(binary * 255, thinningType=cv2.ximgproc.THINNING_ZHANGSUEN) > 0).astype(np.uint8)
    return Enhanced(gray=g, mask=mask, orientation=np.asarray(orientation, np.float32),
                    period=np.asarray(period, np.float32), enhanced=enhanced, binary=binary, skeleton=skeleton)
