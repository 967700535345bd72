"""The distortion tools behind ``bio-fingerprint distort``, ``train-classifier`` and ``evaluate-classifier``:
a labelled dataset of distorted prints and the distortion CNN's training and held-out evaluation."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _data_dir(settings: Any) -> Path:
    return Path(os.environ.get("BIOMETRICS_DATA_DIR") or getattr(settings, "data_dir", None) or "../shared/data")


def _gray(path: Path) -> np.ndarray:
    from bio_shared.images import decode_image

    return decode_image(path.read_bytes(), mode="gray", max_bytes=1 << 30).pixels


def distort_cmd(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint.engine.distortion import DISTORTIONS, write_dataset

    src = Path(args.source)
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".png", ".tif", ".tiff", ".bmp", ".jpg",
                                                                         ".jpeg", ".webp"))[: args.limit]
    if not files:
        sys.exit(f"no images under {src}")
    kinds = args.kinds.split(",") if args.kinds else list(DISTORTIONS)
    rows = write_dataset(files, Path(args.out), kinds, args.per_kind, args.seed)
    print(f"wrote {len(rows)} images of {len(kinds)} kinds from {len(files)} prints to {args.out} (labels.csv)")


def _classifier_prints(settings: Any, split: str) -> list[np.ndarray]:
    """Train: FVC2002 fingers 101-108 of both B sets and pyfnprint fingers 1-9; test: the other fingers."""
    base = _data_dir(settings) / "fingerprints"
    files = []
    for db in ("DB1_B", "DB2_B"):
        for p in sorted((base / "fvc2002" / db).glob("*.tif")):
            finger = int(p.stem.split("_")[0])
            if (finger <= 108) == (split == "train"):
                files.append(p)
    for p in sorted((base / "pyfnprint").glob("*.png")):
        finger = int(p.stem.split("_")[0])
        if (finger <= 9) == (split == "train"):
            files.append(p)
    return [_gray(p) for p in files]


def train_classifier(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint.engine.classifier import DistortionClassifier, model_path, train
    from bio_fingerprint.engine.classifier import evaluate as ev

    out = Path(args.out) if args.out else model_path()
    rep = train(_classifier_prints(settings, "train"), out, epochs=args.epochs, per_class=args.per_class,
                seed=args.seed)
    print(f"trained in {rep.seconds:.0f} s on {rep.samples} generated samples; wrote {out} "
          f"({out.stat().st_size / 1024:.0f} KiB)")
    res = ev(DistortionClassifier(out), _classifier_prints(settings, "test"))
    print(json.dumps(res))


def evaluate_classifier(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint.engine.classifier import DistortionClassifier
    from bio_fingerprint.engine.classifier import evaluate as ev

    clf = DistortionClassifier(Path(args.model) if args.model else None)
    res = ev(clf, _classifier_prints(settings, "test"), per_class=args.per_class)
    print(f"accuracy {res['accuracy']:.3f} on {res['samples']} held-out samples (fingers never seen in training)")
    print("confusion matrix (rows true, columns predicted): " + ", ".join(res["classes"]))
    for name, row in zip(res["classes"], res["confusion_matrix"], strict=True):
        print(f"  {name:>13}: {row}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
