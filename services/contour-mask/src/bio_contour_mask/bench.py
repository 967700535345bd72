"""``bio-contour-mask bench``: fidelity (IoU of rasterised SVG regions against label maps) and latency.

Fidelity runs on any folder of face images with label maps: a ``truth.csv`` with ``image,mask[,...]`` columns
(CelebAMask-HQ's layout in the shared data) or ``N.jpg`` + ``N_mask.png`` pairs. Each map goes through the
service's own code path (map regions, SVG), the SVG is parsed back and filled with the package's scanline
rasteriser (pixel centres, even-odd), and compared per class with the map at the image size (original space)
and with the map warped into the aligned crop (nearest neighbour; aligned space).

Latency runs the service layer (validation, cache, engine, rendering, blob and database writes on SQLite in a
temporary folder) pinned to one CPU: a job with landmarks and map supplied, a job where dlib finds the
landmarks, and a cache hit. A benchmark never fails on a time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bio_contour_mask.engine import labels as L
from bio_contour_mask.engine import render
from bio_contour_mask.engine.align import compose, scale_matrix, warp_labels
from bio_contour_mask.engine.detect import detect_landmarks, models
from bio_contour_mask.engine.pipeline import Options, run

SMALL_CLASSES = ("l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip", "nose", "mouth")
LARGE_CLASSES = ("skin", "hair")
TARGETS: dict[str, Any] = {"large_iou": 0.95, "small_iou": 0.85, "p50_ms": {"landmarks_and_map": 150, "detected_landmarks": 400,
                                                              "cache_hit": 10}}


def add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="fidelity (IoU of SVG regions vs label maps) and latency benchmark")
    p.add_argument("--out", default="reports/contour-mask", help="report path without extension (.md and .json)")
    p.add_argument("--folder", type=Path, default=None,
                   help="images with label maps (default: <data dir>/face_parsing/celebamask-hq)")
    p.add_argument("--smoothing", type=float, default=0.5)
    p.add_argument("--repeat", type=int, default=20, help="timed runs per latency case")
    p.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last one allowed)")
    p.set_defaults(handler=bench_command)
    e = sub.add_parser("evaluate", help="fidelity only, on any folder of images with label maps")
    e.add_argument("folder", type=Path)
    e.add_argument("--smoothing", type=float, default=0.5)
    e.add_argument("--label-order", default="auto", choices=["auto", *L.ORDERS])
    e.set_defaults(handler=lambda args, settings: print(json.dumps(
        fidelity(pairs(args.folder), args.smoothing, args.label_order), indent=2)))


def pairs(folder: Path) -> list[tuple[Path, Path, str]]:
    """(image, label map, kind) of a folder: from truth.csv (image, mask[, mask_kind]) or N.jpg + N_mask.png."""
    truth = folder / "truth.csv"
    out = []
    if truth.is_file():
        with truth.open() as fh:
            for row in csv.DictReader(fh):
                kind = row.get("mask_kind", "")
                out.append((folder / row["image"], folder / row["mask"],
                            "prediction" if "NOT ground truth" in kind or "prediction" in kind else "annotation"))
        return out
    for mask in sorted(folder.rglob("*_mask.png")):
        for ext in (".jpg", ".png", ".jpeg"):
            img = mask.with_name(mask.name.replace("_mask.png", ext))
            if img.is_file():
                out.append((img, mask, "annotation"))
                break
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float | None:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else None


def fidelity(items: list[tuple[Path, Path, str]], smoothing: float = 0.5, label_order: str = "auto") -> dict[str, Any]:
    per_class: dict[str, dict[str, list[float]]] = {"original": {}, "aligned": {}}
    per_image = []
    orders: dict[str, int] = {}
    for image, mask, kind in items:
        rgb = np.asarray(Image.open(image).convert("RGB"))
        labels = np.asarray(Image.open(mask))
        h, w = rgb.shape[:2]
        lm = detect_landmarks(rgb)  # once per image, shared by both spaces
        row: dict[str, Any] = {"image": image.name, "mask": mask.name, "kind": kind}
        for space in ("original", "aligned"):
            res = run(rgb, lm, labels, Options(coordinate_space=space, smoothing=smoothing, label_order=label_order),
                      want_aligned_image=False)
            svg = render.render_svg(res.regions, res.width, res.height, smoothing, space=space)
            masks = render.rasterise_svg(svg)
            if space == "original":
                truth = np.asarray(Image.fromarray(labels).resize((w, h), Image.Resampling.NEAREST))
            else:
                m = compose(res.alignment.matrix, scale_matrix(w / labels.shape[1], h / labels.shape[0]))
                truth = warp_labels(labels, m, res.width)
            order = res.label_order or label_order
            names = L.ORDERS[order]
            orders[order] = orders.get(order, 0) + (space == "original")
            scores = {}
            for value in range(1, L.NUM_CLASSES):
                gt = truth == value
                if gt.sum() < 20:  # a class absent (or cut to a few pixels by the crop)
                    continue
                cls = names[value]
                region = L.REGION_OF_CLASS[cls]
                got = masks.get(region, np.zeros_like(gt)).astype(bool)
                score = _iou(got, gt)
                if score is not None:
                    scores[cls] = round(score, 4)
                    per_class[space].setdefault(cls, []).append(score)
            row[space] = scores
            row["label_order"] = res.label_order
        per_image.append(row)
    summary = {}
    for space, classes in per_class.items():
        means = {c: round(float(np.mean(v)), 4) for c, v in sorted(classes.items())}
        large = [s for c in LARGE_CLASSES for s in classes.get(c, [])]
        small = [s for c in SMALL_CLASSES for s in classes.get(c, [])]
        summary[space] = {"per_class_mean_iou": means, "counts": {c: len(v) for c, v in sorted(classes.items())},
                          "large_mean_iou": round(float(np.mean(large)), 4) if large else None,
                          "small_mean_iou": round(float(np.mean(small)), 4) if small else None,
                          "small_min_class_mean": min((means[c] for c in SMALL_CLASSES if c in means), default=None)}
    return {"images": len(items), "smoothing": smoothing, "label_orders_detected": orders, "summary": summary,
            "per_image": per_image}


def _percentiles(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"p50": round(statistics.median(s), 2), "p90": round(s[min(len(s) - 1, int(0.9 * len(s)))], 2),
            "min": round(s[0], 2), "max": round(s[-1], 2), "n": len(s)}


def latency(items: list[tuple[Path, Path, str]], repeat: int) -> dict[str, Any]:
    from bio_contour_mask.app import build
    from bio_contour_mask.service.inputs import validate_input
    from bio_contour_mask.service.processing import process
    from bio_contour_mask.settings import ContourMaskSettings
    from bio_shared.db import migrate

    big = [(i, m) for i, m, _ in items if Image.open(i).size == (1024, 1024)] or [(i, m) for i, m, _ in items]
    with tempfile.TemporaryDirectory() as tmp:
        def runtime(cache: bool) -> Any:
            settings = ContourMaskSettings(env="test", var_dir=Path(tmp) / ("c" if cache else "n"), database_url="",
                                           redis_url="", jobs_mode="inprocess", cache_enabled=cache)
            migrate("bio_contour_mask", settings.database_url)
            return build(settings)

        rt_nocache, rt_cache = runtime(False), runtime(True)
        inputs = []
        for image, mask in big:
            data = image.read_bytes()
            found = detect_landmarks(np.asarray(Image.open(image).convert("RGB")))
            assert found is not None, f"no face in {image}"
            inputs.append((data, mask.read_bytes(), [[float(x), float(y)] for x, y in found.points]))
        stages: dict[str, dict[str, list[float]]] = {}

        def timed(case: str, rt: Any, data: bytes, map_bytes: bytes | None, landmarks: Any) -> float:
            t = time.perf_counter()
            inp = validate_input(rt, data, landmarks, map_bytes, {}, decode=False)
            result = process(rt, "bench", uuid.uuid4().hex, inp)
            ms = (time.perf_counter() - t) * 1000
            for k, v in result["timings_ms"].items():
                stages.setdefault(case, {}).setdefault(k, []).append(v)
            return ms

        cases: dict[str, list[float]] = {"landmarks_and_map": [], "detected_landmarks": [],
                                         "detected_landmarks_and_map": [], "cache_hit": []}
        for k in range(repeat + 2):  # the first rounds warm up caches and allocators: not counted
            data, map_bytes, lm = inputs[k % len(inputs)]
            runs = {"landmarks_and_map": timed("landmarks_and_map", rt_nocache, data, map_bytes, lm),
                    "detected_landmarks": timed("detected_landmarks", rt_nocache, data, None, None),
                    "detected_landmarks_and_map": timed("detected_landmarks_and_map", rt_nocache, data, map_bytes,
                                                        None)}
            timed("cache_fill", rt_cache, data, map_bytes, lm)
            runs["cache_hit"] = timed("cache_hit", rt_cache, data, map_bytes, lm)
            if k >= 2:
                for case, ms in runs.items():
                    cases[case].append(ms)
        rt_nocache.stop()
        rt_cache.stop()
    return {
        "image_size": list(Image.open(big[0][0]).size), "images": len(inputs),
        "cases": {c: _percentiles(v) for c, v in cases.items()},
        "stages_p50_ms": {c: {k: round(statistics.median(v), 2) for k, v in s.items()}
                          for c, s in stages.items() if c != "cache_fill"},
    }


def bench_command(args: argparse.Namespace, settings: Any) -> None:
    folder = args.folder or Path(settings.data_dir) / "face_parsing" / "celebamask-hq"
    if not folder.is_dir():
        print(f"contour-mask bench: no data at {folder} (set BIOMETRICS_DATA_DIR); nothing measured")
        return
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpu = args.cpu if args.cpu is not None else (cpus[-1] if cpus else None)
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    import cv2

    cv2.setNumThreads(1)
    items = pairs(folder)
    t = time.perf_counter()
    models()
    load_s = time.perf_counter() - t
    fid = fidelity(items, args.smoothing)
    lat = latency(items, args.repeat)
    report = {"folder": str(folder), "cpu": cpu, "model_load_s": round(load_s, 2), "targets": TARGETS,
              "fidelity": fid, "latency": lat,
              "rasteriser": "bio_contour_mask.engine.render.rasterise_svg (own scanline even-odd fill of the parsed "
                            "SVG paths, pixel centres; Bezier curves flattened to 8 segments)"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report, short=True))


def markdown(r: dict[str, Any], short: bool = False) -> str:
    f, lat = r["fidelity"], r["latency"]
    lines = ["# contour-mask benchmark", "",
             f"Data: `{r['folder']}` ({f['images']} images with label maps; class orders detected: "
             f"{f['label_orders_detected']}). Smoothing {f['smoothing']}. Pinned to CPU {r['cpu']}. "
             f"Rasteriser: {r['rasteriser']}.", "",
             "## Fidelity: mean IoU of rasterised SVG regions vs the label map", "",
             "| class | original space | aligned crop (vs warped map) | n |", "|---|---:|---:|---:|"]
    o, a = f["summary"]["original"], f["summary"]["aligned"]
    for cls in sorted(set(o["per_class_mean_iou"]) | set(a["per_class_mean_iou"])):
        lines.append(f"| {cls} | {o['per_class_mean_iou'].get(cls, '')} | {a['per_class_mean_iou'].get(cls, '')} | "
                     f"{o['counts'].get(cls, '')} |")
    lines += ["", f"Large regions (skin, hair): **{o['large_mean_iou']}** original, {a['large_mean_iou']} aligned "
              f"(target >= {TARGETS['large_iou']}). Small regions (eyes, brows, lips, nose, mouth): "
              f"**{o['small_mean_iou']}** original, {a['small_mean_iou']} aligned, worst class mean "
              f"{o['small_min_class_mean']} (target >= {TARGETS['small_iou']}).", "",
              f"## Latency on one core ({lat['image_size'][0]}x{lat['image_size'][1]} images, service layer: "
              "validation, cache, engine, outputs, blob and SQLite writes)", "",
              "| case | p50 ms | p90 ms | min | max | n | target p50 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for case, p in lat["cases"].items():
        target = TARGETS["p50_ms"].get(case, "")
        lines.append(f"| {case} | {p['p50']} | {p['p90']} | {p['min']} | {p['max']} | {p['n']} | {target} |")
    if not short:
        lines += ["", "Stage p50 (ms):", "", "| case | stages |", "|---|---|"]
        for case, st in lat["stages_p50_ms"].items():
            lines.append(f"| {case} | " + ", ".join(f"{k} {v}" for k, v in st.items()) + " |")
        lines += ["", f"dlib model load: {r['model_load_s']} s (once per process).", "",
                  "Timings were taken on a shared 2-core machine and are noisy; a benchmark never fails on a time."]
    return "\n".join(lines) + "\n"
