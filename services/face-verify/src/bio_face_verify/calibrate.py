"""Fit the platform's dlib distance -> score mapping: ``score = 1 / (1 + exp(slope * (d - midpoint)))``.

Pairs: every pair of distinct photos (byte-identical files once) of the fitting folders, labelled same or
different by their truth.csv identities; distances from this service's pipeline (MTCNN, dlib 5-point
alignment, dlib ResNet). The fit is Platt's method (J. Platt, "Probabilistic outputs for support vector
machines", 1999): logistic regression of the label on the distance with Platt's smoothed targets
((N+ + 1) / (N+ + 2) and 1 / (N- + 2)), which keeps the slope finite when the classes separate, and with
both classes weighted equally, so the score reads as the probability of "same person" at even prior odds.
The mapping is then checked on the other folders (pairs never used in the fit): log loss, Brier score and
the accuracy of ``score >= 0.5``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bio_face_verify.engine.verify import AnalysisOptions, Verifier
from bio_face_verify.evaluate import _embed_all, load_dataset

FIT_FOLDERS = ("face_recognition",)
EVAL_FOLDERS = ("openface", "facenet-pytorch", "davidsandberg-facenet")
MODEL = "dlib_resnet_v1"


def pair_distances(folder: Path, verifier: Verifier) -> tuple[np.ndarray, np.ndarray]:
    """(distances, labels 1 = same) of every labelled pair of one folder; photos without a face are left out."""
    dataset = load_dataset(folder)
    opts = AnalysisOptions(pose_policy="flag", multiple_faces="largest", min_face_px=20)
    embeddings, _ = _embed_all(dataset, lambda rgb: verifier.analyze(rgb, "image", opts).embedding)
    d, y = [], []
    for a, b, same in dataset.pairs:
        ea, eb = embeddings.get(a), embeddings.get(b)
        if ea is not None and eb is not None:
            d.append(float(np.linalg.norm(ea - eb)))
            y.append(1.0 if same else 0.0)
    return np.array(d), np.array(y)


def fit_logistic(d: np.ndarray, y: np.ndarray, iterations: int = 200) -> tuple[float, float]:
    """(slope, midpoint) by Newton's method on the class-balanced, Platt-smoothed log loss."""
    n_pos, n_neg = float(y.sum()), float(len(y) - y.sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("both same-person and different-person pairs are needed")
    t = np.where(y > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    w = np.where(y > 0, 0.5 / n_pos, 0.5 / n_neg)
    a, b = -10.0, 6.0  # logit = a * d + b (same = positive class); score = sigmoid(logit)
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(a * d + b)))
        g = np.array([np.sum(w * (p - t) * d), np.sum(w * (p - t))])
        s = w * p * (1 - p)
        h = np.array([[np.sum(s * d * d), np.sum(s * d)], [np.sum(s * d), np.sum(s)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(-a), float(-b / a)


def score(d: np.ndarray, slope: float, midpoint: float) -> np.ndarray:
    return 1 / (1 + np.exp(np.clip(slope * (d - midpoint), -700, 700)))


def quality(d: np.ndarray, y: np.ndarray, slope: float, midpoint: float) -> dict[str, Any]:
    p = np.clip(score(d, slope, midpoint), 1e-12, 1 - 1e-12)
    w = np.where(y > 0, 0.5 / max(y.sum(), 1), 0.5 / max(len(y) - y.sum(), 1))
    return {"pairs": int(len(y)), "same": int(y.sum()),
            "balanced_log_loss": round(float(-np.sum(w * (y * np.log(p) + (1 - y) * np.log(1 - p)))), 4),
            "balanced_brier": round(float(np.sum(w * (p - y) ** 2)), 4),
            "accuracy_at_0_5": round(float(np.mean((p >= 0.5) == (y > 0))), 4),
            "same_score_min": round(float(p[y > 0].min()), 4) if y.any() else None,
            "different_score_max": round(float(p[y == 0].max()), 4) if (y == 0).any() else None}


def calibrate(faces_dir: Path, out: Path | None = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    verifier = Verifier("dlib")
    per_folder: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in FIT_FOLDERS + EVAL_FOLDERS:
        if progress:
            progress(f"pairs of {name} ...")
        per_folder[name] = pair_distances(faces_dir / name, verifier)
    d_fit = np.concatenate([per_folder[n][0] for n in FIT_FOLDERS])
    y_fit = np.concatenate([per_folder[n][1] for n in FIT_FOLDERS])
    slope, midpoint = fit_logistic(d_fit, y_fit)
    d_ev = np.concatenate([per_folder[n][0] for n in EVAL_FOLDERS])
    y_ev = np.concatenate([per_folder[n][1] for n in EVAL_FOLDERS])
    doc = {
        "model": MODEL, "slope": round(slope, 4), "midpoint": round(midpoint, 4),
        "fitted_on": [f"faces/{n}" for n in FIT_FOLDERS],
        "fitted_with": ("Platt scaling (class-balanced, smoothed targets) of same/different labels on the euclidean "
                        "distance of every pair of distinct photos; pipeline MTCNN + dlib 5-point alignment + dlib "
                        "ResNet (bio-face-verify calibrate)"),
        "fit": quality(d_fit, y_fit, slope, midpoint),
        "evaluated_on": [f"faces/{n}" for n in EVAL_FOLDERS],
        "evaluation": quality(d_ev, y_ev, slope, midpoint),
        "score_at_0_6": round(float(score(np.array([0.6]), slope, midpoint)[0]), 4),
    }
    if out is not None:
        Path(out).write_text(json.dumps(doc, indent=2) + "\n")
    return doc

