"""Accuracy of a face pipeline on any folder of photos with a ``truth.csv`` (``image,identity``; extra
columns ignored) and, when present, a ``pairs.csv`` (``image_a,image_b,same``; otherwise all pairs).

* rank-1 identification, leave one out: every photo whose identity has another photo is a probe against
  all other photos; a photo where no face is found counts as a miss.
* verification: genuine and impostor distance distributions, accuracy at the threshold, EER. A pair with a
  photo where no face was found counts as "not the same" (a false non-match for a genuine pair).
Byte-identical files are counted once (a photo compared with its own copy says nothing).
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bio_shared.images import decode_image

Embedder = Callable[[np.ndarray], np.ndarray | None]  # RGB -> the largest face's embedding, or None


@dataclass
class Sample:
    path: str
    identity: str


@dataclass
class Dataset:
    root: Path
    samples: list[Sample]
    pairs: list[tuple[str, str, bool]] | None
    duplicates: list[str] = field(default_factory=list)


def read_dataset(root: Path) -> Dataset:
    root = Path(root)
    samples, seen, dups = [], {}, []
    with open(root / "truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            image, identity = (row.get("image") or "").strip(), (row.get("identity") or "").strip()
            if not image or not identity or not (root / image).is_file():
                continue
            digest = hashlib.sha256((root / image).read_bytes()).hexdigest()
            if digest in seen:
                dups.append(image)
                continue
            seen[digest] = image
            samples.append(Sample(image, identity))
    pairs = None
    if (root / "pairs.csv").is_file():
        known = {s.path for s in samples}
        pairs = []
        with open(root / "pairs.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                a, b = row["image_a"].strip(), row["image_b"].strip()
                if a in known and b in known:
                    pairs.append((a, b, str(row["same"]).strip() in ("1", "true", "True")))
    return Dataset(root, samples, pairs, dups)


def embed_dataset(ds: Dataset, embedder: Embedder) -> tuple[dict[str, np.ndarray | None], list[float]]:
    out: dict[str, np.ndarray | None] = {}
    times = []
    for s in ds.samples:
        rgb = decode_image((ds.root / s.path).read_bytes(), mode="rgb").pixels
        t = time.perf_counter()
        out[s.path] = embedder(rgb)
        times.append(time.perf_counter() - t)
    return out, times


def rank1(ds: Dataset, emb: dict[str, np.ndarray | None]) -> dict[str, Any]:
    ident = {s.path: s.identity for s in ds.samples}
    counts: dict[str, int] = {}
    for s in ds.samples:
        counts[s.identity] = counts.get(s.identity, 0) + 1
    probes = [s.path for s in ds.samples if counts[s.identity] > 1]
    correct = 0
    misses: list[dict[str, Any]] = []
    for p in probes:
        q = emb.get(p)
        gallery = [(g, v) for g, v in emb.items() if g != p and v is not None]
        if q is None or not gallery:
            misses.append({"probe": p, "reason": "no_face"})
            continue
        d = np.linalg.norm(np.stack([v for _, v in gallery]) - q, axis=1)
        best = gallery[int(np.argmin(d))][0]
        if ident[best] == ident[p]:
            correct += 1
        else:
            misses.append({"probe": p, "nearest": best, "distance": round(float(d.min()), 4)})
    return {"probes": len(probes), "correct": correct, "rank1": correct / len(probes) if probes else None,
            "misses": misses}


def eer(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold (distances: smaller = more similar)."""
    if not len(genuine) or not len(impostor):
        return float("nan"), float("nan")
    best_gap, best_t, best_rate = 2.0, 0.0, float("nan")
    for t in np.unique(np.concatenate([genuine, impostor])):
        fnmr = float(np.mean(genuine > t))
        fmr = float(np.mean(impostor <= t))
        if abs(fnmr - fmr) < best_gap:
            best_gap, best_t, best_rate = abs(fnmr - fmr), float(t), (fnmr + fmr) / 2
    return best_rate, best_t


def _stats(x: np.ndarray) -> dict[str, Any]:
    if not len(x):
        return {"n": 0}
    return {"n": int(len(x)), "mean": round(float(x.mean()), 4), "std": round(float(x.std()), 4),
            "min": round(float(x.min()), 4), "p50": round(float(np.median(x)), 4), "max": round(float(x.max()), 4)}


def verification(ds: Dataset, emb: dict[str, np.ndarray | None], threshold: float) -> dict[str, Any]:
    ident = {s.path: s.identity for s in ds.samples}
    pairs = ds.pairs if ds.pairs is not None else [
        (a.path, b.path, a.identity == b.identity) for a, b in itertools.combinations(ds.samples, 2)]
    genuine: list[float] = []
    impostor: list[float] = []
    fails = {"genuine": 0, "impostor": 0}
    correct = 0
    for a, b, same in pairs:
        va, vb = emb.get(a), emb.get(b)
        if va is None or vb is None:
            fails["genuine" if same else "impostor"] += 1
            correct += 0 if same else 1
            continue
        d = float(np.linalg.norm(va - vb))
        (genuine if same else impostor).append(d)
        correct += int((d <= threshold) == same)
    g, i = np.asarray(genuine), np.asarray(impostor)
    rate, at = eer(g, i)
    return {"pairs": len(pairs), "source": "pairs.csv" if ds.pairs is not None else "all pairs",
            "genuine": _stats(g), "impostor": _stats(i), "no_face_pairs": fails, "threshold": threshold,
            "accuracy": correct / len(pairs) if pairs else None,
            "fnmr": float(np.mean(g > threshold)) if len(g) else None,
            "fmr": float(np.mean(i <= threshold)) if len(i) else None,
            "eer": rate, "eer_threshold": at, "identities": len(set(ident.values()))}


def evaluate(root: Path, embedders: dict[str, Embedder], threshold: float = 0.6) -> dict[str, Any]:
    ds = read_dataset(root)
    out: dict[str, Any] = {"folder": str(root), "images": len(ds.samples), "duplicates_skipped": ds.duplicates,
                           "pipelines": {}}
    for name, fn in embedders.items():
        emb, times = embed_dataset(ds, fn)
        out["pipelines"][name] = {
            "no_face": sorted(p for p, v in emb.items() if v is None),
            "identification": rank1(ds, emb),
            "verification": verification(ds, emb, threshold),
            "seconds_per_photo_p50": round(float(np.median(times)), 4) if times else None,
        }
    return out
