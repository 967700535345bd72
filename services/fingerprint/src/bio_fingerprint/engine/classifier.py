"""A small CNN that tells which capture distortion a print shows, trained from scratch on CPU.

Classes are the appearance distortions of :mod:`distortion` plus ``clean`` and ``partial``. Pure
geometric changes (rotation, translation, elastic) leave a print looking like a clean print, so they
are generated for matcher tests but are not classes here.

Input: two 96x96 channels, the whole print resized (global layout: partial prints, smudges, contrast)
and a native-resolution centre crop (ridge texture: noise, blur, dry, wet).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from bio_fingerprint.engine.distortion import distort

if TYPE_CHECKING:
    from torch import nn

CLASSES = ["clean", "partial", "noise", "blur", "smudge", "dry", "wet", "low_contrast"]
MODEL_VERSION = "distortion-cnn-1"
MODEL_FILE = "distortion_cnn_v1.pt"
SIDE = 96


def model_path() -> Path:
    return Path(str(resources.files("bio_fingerprint") / "weights" / MODEL_FILE))


def features(gray: np.ndarray) -> np.ndarray:
    """(2, SIDE, SIDE) float32 in [0, 1]."""
    h, w = gray.shape
    whole = cv2.resize(gray, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    if h < SIDE or w < SIDE:
        gray = cv2.copyMakeBorder(gray, 0, max(0, SIDE - h), 0, max(0, SIDE - w), cv2.BORDER_REPLICATE)
        h, w = gray.shape
    y0, x0 = (h - SIDE) // 2, (w - SIDE) // 2
    crop = gray[y0:y0 + SIDE, x0:x0 + SIDE]
    return np.stack([whole, crop]).astype(np.float32) / 255.0


def build_model(n_classes: int = len(CLASSES)) -> nn.Sequential:
    import torch.nn as nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(2, 16), nn.MaxPool2d(2),  # 48
        *block(16, 32), nn.MaxPool2d(2),  # 24
        *block(32, 48), nn.MaxPool2d(2),  # 12
        *block(48, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(64, n_classes),
    )


def make_samples(prints: list[np.ndarray], per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    rng = np.random.default_rng(seed)
    for label, kind in enumerate(CLASSES):
        for _ in range(per_class):
            src = prints[int(rng.integers(len(prints)))]
            img, _ = distort(src, kind, int(rng.integers(1 << 31)))
            xs.append(features(img))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, np.int64)


@dataclass
class TrainReport:
    epochs: int
    seconds: float
    train_accuracy: float
    samples: int


def train(prints: list[np.ndarray], out: Path, epochs: int = 12, per_class: int = 160, seed: int = 0,
          log: Any = print) -> TrainReport:
    import torch

    from bio_shared.inference import configure_torch

    configure_torch()
    torch.manual_seed(seed)
    model = build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * ((per_class * len(CLASSES) + 63) // 64))
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    acc = 0.0
    total = 0
    for epoch in range(epochs):
        x, y = make_samples(prints, per_class, seed * 1000 + epoch)  # fresh distortions every epoch
        total += len(y)
        perm = np.random.default_rng(epoch).permutation(len(y))
        model.train()
        correct = 0
        for i in range(0, len(y), 64):
            idx = perm[i:i + 64]
            xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
            opt.zero_grad()
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            sched.step()
            correct += int((logits.argmax(1) == yb).sum())
        acc = correct / len(y)
        log(f"epoch {epoch + 1}/{epochs}: loss {float(loss):.3f} train accuracy {acc:.3f} "
            f"({time.perf_counter() - start:.0f} s)")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"version": MODEL_VERSION, "classes": CLASSES, "side": SIDE, "state_dict": model.state_dict(),
                "trained": {"epochs": epochs, "samples": total, "seed": seed}}, out)
    return TrainReport(epochs, time.perf_counter() - start, acc, total)


class DistortionClassifier:
    """Loaded once per process; ``probabilities(gray)`` -> {class: p}."""

    def __init__(self, path: Path | None = None) -> None:
        import torch

        from bio_shared.inference import configure_torch

        self.device = configure_torch()
        ckpt = torch.load(path or model_path(), map_location="cpu", weights_only=True)
        self.version = ckpt["version"]
        self.classes = list(ckpt["classes"])
        self.model = build_model(len(self.classes))
        self.model.load_state_dict(ckpt["state_dict"])
        self.model.eval().to(self.device)

    def predict(self, grays: list[np.ndarray]) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.stack([features(g) for g in grays])).to(self.device)
        with torch.no_grad():
            return torch.softmax(self.model(x), dim=1).cpu().numpy()

    def probabilities(self, gray: np.ndarray) -> dict[str, float]:
        p = self.predict([gray])[0]
        return {c: round(float(v), 4) for c, v in zip(self.classes, p, strict=True)}


def evaluate(clf: DistortionClassifier, prints: list[np.ndarray], per_class: int = 40, seed: int = 12345
             ) -> dict[str, Any]:
    x_imgs, ys = [], []
    rng = np.random.default_rng(seed)
    for label, kind in enumerate(clf.classes):
        for _ in range(per_class):
            src = prints[int(rng.integers(len(prints)))]
            img, _ = distort(src, kind, int(rng.integers(1 << 31)))
            x_imgs.append(img)
            ys.append(label)
    probs = np.concatenate([clf.predict(x_imgs[i:i + 64]) for i in range(0, len(x_imgs), 64)])
    pred = probs.argmax(1)
    n = len(clf.classes)
    cm = np.zeros((n, n), int)
    for t, p in zip(ys, pred, strict=True):
        cm[t, p] += 1
    return {"classes": clf.classes, "accuracy": round(float((pred == np.asarray(ys)).mean()), 4),
            "confusion_matrix": cm.tolist(), "samples": len(ys), "model_version": clf.version}
