"""Accuracy evaluation with the FVC protocol on any folder with a truth.csv (image,finger_id,...).

* genuine: every pair of impressions of the same finger (FVC2002 B set: 10 x C(8, 2) = 280)
* impostor: first impression of each finger against the first of every other (C(10, 2) = 45)
* impostor_all: every cross-finger pair (finer FMR estimates; 2,880 on a B set)

Metrics: EER, FMR100 / FMR1000 (lowest FNMR with FMR <= 1% / 0.1%), ZeroFMR (lowest FNMR with no
false match). A DET curve is written as SVG (no plotting library needed).
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP_REPS = 1000  # finger resamples behind a confidence interval


def read_truth(folder: Path) -> list[tuple[Path, str]]:
    rows = []
    with open(folder / "truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("image") and row.get("finger_id"):
                rows.append((folder / row["image"], row["finger_id"]))
    return rows


def fvc_pairs(fingers: list[str]) -> dict[str, list[tuple[int, int]]]:
    """Index pairs of the FVC protocol; impressions are taken in truth.csv order."""
    by: OrderedDict[str, list[int]] = OrderedDict()
    for i, f in enumerate(fingers):
        by.setdefault(f, []).append(i)
    genuine = [p for idx in by.values() for p in itertools.combinations(idx, 2)]
    firsts = [idx[0] for idx in by.values()]
    impostor = list(itertools.combinations(firsts, 2))
    groups = list(by.values())
    impostor_all = [(a, b) for g1, g2 in itertools.combinations(groups, 2) for a in g1 for b in g2]
    return {"genuine": genuine, "impostor": impostor, "impostor_all": impostor_all}


def rates(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (every distinct score) with FMR (impostor >= t) and FNMR (genuine < t)."""
    ths = np.unique(np.concatenate([genuine, impostor, [np.inf]]))
    imp = np.sort(impostor)
    gen = np.sort(genuine)
    fmr = 1.0 - np.searchsorted(imp, ths, side="left") / max(len(imp), 1)
    fnmr = np.searchsorted(gen, ths, side="left") / max(len(gen), 1)
    return ths, fmr, fnmr


def _crossing(fmr: np.ndarray, fnmr: np.ndarray) -> tuple[int, float]:
    """(threshold index, EER) as in FVC: the midpoint of FMR and FNMR where the curves cross."""
    k = int(np.argmin(np.abs(fmr - fnmr)))
    return k, float((fmr[k] + fnmr[k]) / 2)


def metrics(genuine: list[float] | np.ndarray, impostor: list[float] | np.ndarray) -> dict[str, float]:
    g = np.asarray(genuine, float)
    i = np.asarray(impostor, float)
    if len(g) == 0 or len(i) == 0:
        return {"eer": float("nan"), "fmr100": float("nan"), "fmr1000": float("nan"), "zero_fmr": float("nan")}
    ths, fmr, fnmr = rates(g, i)
    k, eer = _crossing(fmr, fnmr)

    def at(limit: float) -> float:
        ok = fmr <= limit + 1e-12
        return float(fnmr[ok].min()) if ok.any() else 1.0

    return {"eer": eer, "fmr100": at(0.01), "fmr1000": at(0.001), "zero_fmr": at(0.0),
            "eer_threshold": float(ths[k]), "genuine": int(len(g)), "impostor": int(len(i))}


def score_fmr_points(impostor: np.ndarray, fmrs: tuple[float, ...] = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)
                     ) -> list[dict[str, float]]:
    """Threshold per target FMR: the smallest score t with share(impostor >= t) <= fmr."""
    imp = np.sort(np.asarray(impostor, float))
    n = len(imp)
    points = []
    for f in fmrs:
        if f * n < 1:
            # too few impostor comparisons to measure this rate: extrapolate, clearly marked
            t = float(imp[-1]) * (1 + 0.15 * math.log10(1 / (f * n)))
            points.append({"fmr": f, "threshold": round(t, 3), "measured": False})
            continue
        k = int(math.floor(f * n))  # at most k impostor scores may reach the threshold
        t = float(imp[n - k - 1]) + 1e-3  # just above the (k+1)-th highest impostor score
        points.append({"fmr": f, "threshold": round(t, 3), "measured": True})
    return points


def det_svg(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> str:
    """A DET plot (FNMR against FMR, both on log axes from 0.01% to 100%) as standalone SVG."""
    w, h, m = 520, 420, 60
    lo = -4.0

    def sx(v: float) -> float:
        return m + (max(math.log10(max(v, 1e-4)), lo) - lo) / -lo * (w - 2 * m)

    def sy(v: float) -> float:
        return h - m - (max(math.log10(max(v, 1e-4)), lo) - lo) / -lo * (h - 2 * m)

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" '
             f'font-size="11"><rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>']
    for e in range(-4, 1):
        v = 10.0 ** e
        parts.append(f'<line x1="{sx(v)}" y1="{m}" x2="{sx(v)}" y2="{h - m}" stroke="#ddd"/>')
        parts.append(f'<line x1="{m}" y1="{sy(v)}" x2="{w - m}" y2="{sy(v)}" stroke="#ddd"/>')
        parts.append(f'<text x="{sx(v)}" y="{h - m + 15}" text-anchor="middle">{v * 100:g}%</text>')
        parts.append(f'<text x="{m - 5}" y="{sy(v) + 4}" text-anchor="end">{v * 100:g}%</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 15}" text-anchor="middle">FMR</text>')
    parts.append(f'<text x="15" y="{h / 2}" transform="rotate(-90 15 {h / 2})" text-anchor="middle">FNMR</text>')
    for k, (name, (fmr, fnmr)) in enumerate(curves.items()):
        pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(fmr, fnmr, strict=True))
        c = colours[k % len(colours)]
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2"/>')
        parts.append(f'<text x="{w - m - 5}" y="{m + 15 + 14 * k}" text-anchor="end" fill="{c}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def eer_interval(genuine: np.ndarray, impostor: np.ndarray, genuine_fingers: np.ndarray,
                 impostor_fingers: np.ndarray, n_fingers: int, level: float = 0.95, reps: int = BOOTSTRAP_REPS,
                 seed: int = 0) -> list[float]:
    """[low, high] of a ``level`` confidence interval of the EER (as metrics computes it), by resampling
    fingers with replacement (the subsets bootstrap of Bolle, Ratha and Pankanti 2004: the comparisons of
    one finger are not independent of each other, the fingers are). A finger drawn c times weighs its
    genuine comparisons c and an impostor comparison of fingers a and b c_a x c_b.
    genuine_fingers: the finger index of each genuine comparison; impostor_fingers: (m, 2) finger indices."""
    g = np.asarray(genuine, float)
    i = np.asarray(impostor, float)
    if len(g) == 0 or len(i) == 0 or n_fingers < 2:
        return [float("nan"), float("nan")]
    ths = np.unique(np.concatenate([g, i, [np.inf]]))
    go, io = np.argsort(g, kind="stable"), np.argsort(i, kind="stable")
    gpos = np.searchsorted(g[go], ths, side="left")
    ipos = np.searchsorted(i[io], ths, side="left")
    gf = np.asarray(genuine_fingers, np.int64)[go]
    imf = np.asarray(impostor_fingers, np.int64).reshape(-1, 2)[io]
    rng = np.random.default_rng(seed)
    eers = np.full(reps, np.nan)
    for r in range(reps):
        c = np.bincount(rng.integers(0, n_fingers, n_fingers), minlength=n_fingers).astype(float)
        gw, iw = c[gf], c[imf[:, 0]] * c[imf[:, 1]]
        gt, it = gw.sum(), iw.sum()
        if gt == 0 or it == 0:
            continue
        fnmr = np.concatenate([[0.0], np.cumsum(gw)])[gpos] / gt
        fmr = 1.0 - np.concatenate([[0.0], np.cumsum(iw)])[ipos] / it
        eers[r] = _crossing(fmr, fnmr)[1]
    lo, hi = np.nanquantile(eers, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def evaluate_scores(n: int, fingers: list[str], compare: Callable[[list[tuple[int, int]]], np.ndarray],
                    all_impostors: bool = True, intervals: bool = True) -> dict[str, Any]:
    """FVC metrics, each EER with its 95 % confidence interval over fingers (``eer_ci95``, unless not
    ``intervals``); compare scores a list of (index, index) pairs (a batch, so a compiled matcher can run
    the whole list in one call)."""
    pairs = fvc_pairs(fingers)
    gen = np.asarray(compare(pairs["genuine"]), float)
    imp = np.asarray(compare(pairs["impostor"]), float)
    imp_all = np.asarray(compare(pairs["impostor_all"]), float) if all_impostors else np.zeros(0)
    ids = {f: k for k, f in enumerate(dict.fromkeys(fingers))}
    finger = np.array([ids[f] for f in fingers], np.int64)

    def measured(impostor: np.ndarray, kind: str) -> dict[str, Any]:
        m: dict[str, Any] = dict(metrics(gen, impostor))
        if intervals:
            gen_f = finger[np.asarray(pairs["genuine"], np.int64).reshape(-1, 2)[:, 0]]
            imp_f = finger[np.asarray(pairs[kind], np.int64).reshape(-1, 2)]
            m["eer_ci95"] = eer_interval(gen, impostor, gen_f, imp_f, len(ids))
        return m

    out: dict[str, Any] = {"fvc": measured(imp, "impostor"),
                           "scores": {"genuine": gen, "impostor": imp, "impostor_all": imp_all}}
    if all_impostors:
        out["all_pairs"] = measured(imp_all, "impostor_all")
    return out
