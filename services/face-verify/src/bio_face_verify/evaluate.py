"""Accuracy evaluation on any folder of face photos with a ``truth.csv`` (image,identity) and an
optional ``pairs.csv`` (image_a,image_b,same).

A folder without truth.csv whose subfolders have one (``../shared/data/faces``) is evaluated as one
pooled set: identities are the names the truth files give, pairs are every pair of distinct images
(byte-identical files are counted once), or the union of the subfolders' pairs.csv where present.

Each available pipeline is evaluated on the same pairs in the same run:

* ``mtcnn+dlib``: this service's default pipeline (MTCNN, dlib 5-point alignment in the MTCNN box,
  dlib ResNet), the largest face of each photo, pose only flagged;
* ``mtcnn+facenet``: when FaceNet weights are cached (or given with --facenet-weights);
* ``dlib-plain``: the plain dlib pipeline (HOG detector, 5-point alignment, ResNet).

A photo in which a pipeline finds no face makes each of its pairs a non-match for that pipeline (its
distance is infinite): a pipeline is not rewarded for skipping hard photos.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bio_face_verify.engine.embed import DLIB_SPEC, PlainDlib, distances
from bio_face_verify.engine.nets import facenet_weights_path
from bio_face_verify.engine.verify import AnalysisOptions, FaceImageError, Verifier
from bio_shared.images import decode_image


@dataclass
class Dataset:
    root: Path
    images: dict[str, str]  # relative path -> identity
    pairs: list[tuple[str, str, bool]]
    duplicates: int


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(fh)]


def load_dataset(root: Path) -> Dataset:
    root = Path(root)
    folders = [root] if (root / "truth.csv").is_file() else sorted(p.parent for p in root.glob("*/truth.csv"))
    if not folders:
        raise FileNotFoundError(f"{root} has no truth.csv (image,identity), nor subfolders with one")
    images: dict[str, str] = {}
    seen: dict[str, str] = {}
    alias: dict[str, str] = {}
    duplicates = 0
    given_pairs: list[tuple[str, str, bool]] = []
    for folder in folders:
        prefix = "" if folder == root else f"{folder.name}/"
        for row in _read_csv(folder / "truth.csv"):
            rel = prefix + row["image"]
            digest = hashlib.sha256((root / rel).read_bytes()).hexdigest()
            if digest in seen:
                alias[rel] = seen[digest]
                duplicates += 1
                continue
            seen[digest] = rel
            images[rel] = row["identity"]
        if (folder / "pairs.csv").is_file():
            for row in _read_csv(folder / "pairs.csv"):
                a, b = prefix + row["image_a"], prefix + row["image_b"]
                given_pairs.append((alias.get(a, a), alias.get(b, b), row["same"] in ("1", "true", "True")))
    if given_pairs:
        pairs = [(a, b, same) for a, b, same in given_pairs if a != b]
    else:
        pairs = [(a, b, images[a] == images[b]) for a, b in itertools.combinations(sorted(images), 2)]
    return Dataset(root, images, pairs, duplicates)


def roc_metrics(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, FAR and FRR at ``threshold``; EER; TAR at FAR <= 1 % (distances: smaller = more alike)."""
    g, i = np.asarray(genuine, float), np.asarray(impostor, float)
    out: dict[str, Any] = {"genuine_pairs": int(len(g)), "impostor_pairs": int(len(i))}
    if not len(g) or not len(i):
        return out
    far_t, frr_t = float(np.mean(i <= threshold)), float(np.mean(g > threshold))
    out.update(threshold=threshold, accuracy=float((np.sum(g <= threshold) + np.sum(i > threshold)) / (len(g) + len(i))),
               far=far_t, frr=frr_t)
    cands = np.unique(np.concatenate([g[np.isfinite(g)], i[np.isfinite(i)], [-1.0, np.inf]]))
    far = np.array([np.mean(i <= t) for t in cands])
    frr = np.array([np.mean(g > t) for t in cands])
    k = int(np.argmin(np.abs(far - frr)))
    out["eer"] = float((far[k] + frr[k]) / 2)
    ok = far <= 0.01
    out["tar_at_far_1pct"] = float(np.max(1 - frr[ok])) if ok.any() else 0.0
    out["far_resolution"] = 1.0 / len(i)
    return out


def _embed_all(dataset: Dataset, fn: Callable[[np.ndarray], np.ndarray | None]) -> tuple[dict, dict]:
    embeddings: dict[str, np.ndarray | None] = {}
    errors: dict[str, str] = {}
    times = []
    for rel in sorted(dataset.images):
        rgb = decode_image((dataset.root / rel).read_bytes(), mode="rgb").pixels
        t0 = time.perf_counter()
        try:
            embeddings[rel] = fn(rgb)
            if embeddings[rel] is None:
                errors[rel] = "no_face"
        except FaceImageError as exc:
            embeddings[rel] = None
            errors[rel] = exc.code
        times.append(time.perf_counter() - t0)
    return embeddings, {"errors": errors, "seconds_per_image_p50": float(np.median(times)) if times else 0.0}


def evaluate(root: Path, *, facenet_weights: Path | None = None, max_side: int = 1024,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    dataset = load_dataset(root)
    opts = AnalysisOptions(pose_policy="flag", multiple_faces="largest", max_side=max_side, min_face_px=20)
    pipelines: dict[str, tuple[Callable[[np.ndarray], np.ndarray | None], float]] = {}
    dlib_verifier = Verifier("dlib")
    pipelines["mtcnn+dlib"] = (lambda rgb: dlib_verifier.analyze(rgb, "image", opts).embedding, DLIB_SPEC.threshold)
    weights = Path(facenet_weights) if facenet_weights else facenet_weights_path()
    if weights.is_file():
        fn_verifier = Verifier("facenet", facenet_weights=weights)
        pipelines["mtcnn+facenet"] = (lambda rgb: fn_verifier.analyze(rgb, "image", opts).embedding,
                                      fn_verifier.spec.threshold)
    plain = PlainDlib()
    pipelines["dlib-plain"] = (lambda rgb: plain.embed_image(_max_side(rgb, max_side)), DLIB_SPEC.threshold)

    report: dict[str, Any] = {
        "dataset": str(dataset.root), "images": len(dataset.images), "identities": len(set(dataset.images.values())),
        "duplicates_skipped": dataset.duplicates, "pairs": len(dataset.pairs),
        "genuine_pairs": sum(1 for p in dataset.pairs if p[2]), "facenet_weights": str(weights) if weights.is_file()
        else None, "pipelines": {}}
    for name, (fn, threshold) in pipelines.items():
        if progress:
            progress(f"evaluating {name} on {len(dataset.images)} images ...")
        embeddings, info = _embed_all(dataset, fn)
        genuine: list[float] = []
        impostor: list[float] = []
        for a, b, same in dataset.pairs:
            ea, eb = embeddings.get(a), embeddings.get(b)
            d = distances(ea, eb)[0] if ea is not None and eb is not None else math.inf
            (genuine if same else impostor).append(d)
        metrics = roc_metrics(np.array(genuine), np.array(impostor), threshold)
        report["pipelines"][name] = {**metrics, "failed_images": info["errors"],
                                     "seconds_per_image_p50": round(info["seconds_per_image_p50"], 4)}
    return report


def _max_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    from bio_shared.images import resize_max_side

    return resize_max_side(rgb, max_side)


def markdown_table(report: dict[str, Any]) -> str:
    lines = [f"Dataset `{report['dataset']}`: {report['images']} images of {report['identities']} identities "
             f"({report['duplicates_skipped']} byte-identical duplicates skipped), {report['pairs']} pairs "
             f"({report['genuine_pairs']} genuine).", "",
             "| pipeline | threshold | accuracy | FAR | FRR | EER | TAR @ FAR 1 % | images without a face | s / image (p50) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in report["pipelines"].items():
        if "accuracy" not in m:
            lines.append(f"| {name} | | | | | | | {len(m['failed_images'])} | |")
            continue
        lines.append(f"| {name} | {m['threshold']} | {m['accuracy']:.4f} | {m['far']:.4f} | {m['frr']:.4f} | "
                     f"{m['eer']:.4f} | {m['tar_at_far_1pct']:.4f} | {len(m['failed_images'])} | "
                     f"{m['seconds_per_image_p50']:.3f} |")
    return "\n".join(lines)
