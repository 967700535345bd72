"""Command-line entry points of the fingerprint service.

``bio-fingerprint migrate|serve|worker`` (shared), plus:

* ``bench [--out reports/fingerprint]``: FVC protocol on DB1_B / DB2_B (EER, FMR100, FMR1000, ZeroFMR,
  DET plots), NBIS (mindtct + bozorth3) side by side, extraction / comparison / 1:N speed.
* ``evaluate DIR [--json FILE] [--enhancement classic|learned]``: the FVC protocol on any folder with truth.csv.
* ``calibrate [DIR ...]``: measure the score-to-FMR table on impostor comparisons and write it into the package.
* ``distort SRC_DIR OUT_DIR [--kinds ...] [--per-kind N]``: labelled distorted dataset from clean prints.
* ``train-classifier [--epochs N] [--out FILE]`` / ``evaluate-classifier``: the distortion CNN.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bio_fingerprint.app import SERVICE
from bio_shared.cli import service_cli


def _data_dir(settings: Any) -> Path:
    import os

    return Path(os.environ.get("BIOMETRICS_DATA_DIR") or getattr(settings, "data_dir", None) or "../shared/data")


def _gray(path: Path) -> np.ndarray:
    from bio_shared.images import decode_image

    return decode_image(path.read_bytes(), mode="gray", max_bytes=1 << 30).pixels


def _extract_rows(rows: list[tuple[Path, str]], preset: str = "classic", extractor: str = "leader") -> dict[str, Any]:
    from bio_fingerprint.engine.enhance import EnhanceMethods
    from bio_fingerprint.engine.pipeline import process

    methods = EnhanceMethods.preset(preset)
    # the template path: LEADER minutiae and the quality score need no enhanced ridge image (as /verify and
    # /identify probes); the classic extractor needs it and computes it regardless
    ridges = extractor == "classic"
    process(_gray(rows[0][0]), None, methods, 500, extractor, ridges)  # warm-up (imports, compilation)
    templates, times, qualities = [], [], []
    for path, _ in rows:
        img = _gray(path)
        t = time.perf_counter()
        r = process(img, None, methods, 500, extractor, ridges)
        times.append(time.perf_counter() - t)
        templates.append(r.minutiae)
        qualities.append(r.quality.score)
    return {"rows": rows, "templates": templates, "times": times, "qualities": qualities}


def _evaluate_rows(rows: list[tuple[Path, str]], preset: str = "classic", extractor: str = "leader") -> dict[str, Any]:
    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.evaluation import evaluate_scores, fvc_pairs

    ex = _extract_rows(rows, preset, extractor)
    packed = matcher.pack(ex["templates"])
    fingers = [f for _, f in ex["rows"]]
    matcher.score_pairs(packed, [(0, 1)])  # compilation / cache load outside the timing
    count = [0]
    elapsed = [0.0]

    def compare(pairs: list[tuple[int, int]]) -> np.ndarray:
        t = time.perf_counter()
        out = matcher.score_pairs(packed, pairs)
        elapsed[0] += time.perf_counter() - t
        count[0] += len(pairs)
        return out

    res = evaluate_scores(len(fingers), fingers, compare)
    # the same comparisons one Python call each (as a /verify request makes one), for the call overhead
    prepared = [matcher.prepare(t) for t in ex["templates"]]
    pairs = fvc_pairs(fingers)["impostor_all"]
    t = time.perf_counter()
    for a, b in pairs:
        matcher.match_raw(*prepared[a], *prepared[b])
    res["comparisons_per_s_python_calls"] = len(pairs) / (time.perf_counter() - t)
    res["extraction_ms"] = {"p50": 1000 * statistics.median(ex["times"]), "mean": 1000 * statistics.mean(ex["times"])}
    res["comparisons_per_s"] = count[0] / elapsed[0]
    res["minutiae_mean"] = float(np.mean([len(x) for x in ex["templates"]]))
    res["quality_mean"] = float(np.mean(ex["qualities"]))
    res["templates"] = ex["templates"]
    return res


def _nbis_rows(rows: list[tuple[Path, str]]) -> dict[str, Any] | None:
    try:
        import nbis
    except ImportError:
        return None
    from bio_fingerprint.engine.evaluation import evaluate_scores

    ext = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(min_quality=0.0, get_center=False,
                                                             check_fingerprint=False, compute_nfiq2=False, ppi=500.0))
    mins, times = [], []
    for path, _ in rows:
        data = path.read_bytes()
        t = time.perf_counter()
        mins.append(ext.extract_minutiae(data))
        times.append(time.perf_counter() - t)
    count = [0]

    def compare(pairs: list[tuple[int, int]]) -> np.ndarray:
        count[0] += len(pairs)
        return np.array([float(mins[a].compare(mins[b])) for a, b in pairs])

    t = time.perf_counter()
    res = evaluate_scores(len(mins), [f for _, f in rows], compare)
    res["comparisons_per_s"] = count[0] / (time.perf_counter() - t)
    res["extraction_ms"] = {"p50": 1000 * statistics.median(times)}
    return res


def _pct(v: float) -> str:
    return f"{100 * v:.2f}%"


def bench(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.evaluation import det_svg, rates, read_truth
    from bio_shared.inference import configure_torch

    configure_torch()
    base = _data_dir(settings) / "fingerprints"
    data = base / "fvc2002"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"sets": {}, "environment": "2 shared CPU cores, other engineers' jobs running "
                              "(timings are noisy); matcher and extraction single-threaded"}
    all_templates = []
    extractors = [e for e in args.extractors.split(",") if e]
    # FVC2002 B sets (the targets) and pyfnprint, a set the matcher was not developed on (16 fingers x 8)
    for db, folder in (("DB1_B", data / "DB1_B"), ("DB2_B", data / "DB2_B"), ("pyfnprint", base / "pyfnprint")):
        if not folder.is_dir():
            print(f"skip {db}: {folder} missing")
            continue
        rows = _truth_subset(data, db) if folder.parent == data else read_truth(folder)
        entry: dict[str, Any] = {}
        curves = {}
        for extractor in extractors:
            res = _evaluate_rows(rows, args.enhancement, extractor)
            templates = res.pop("templates")
            if extractor == extractors[0] and folder.parent == data:
                all_templates += templates
            scores = res.pop("scores")
            curves[f"ours, {extractor}"] = rates(scores["genuine"], scores["impostor_all"])[1:]
            entry[f"ours_{extractor}"] = res
            print(f"{db} ours ({extractor} minutiae): EER {_pct(res['fvc']['eer'])} FMR100 {_pct(res['fvc']['fmr100'])} "
                  f"FMR1000 {_pct(res['fvc']['fmr1000'])} ZeroFMR {_pct(res['fvc']['zero_fmr'])} "
                  f"(all impostors: EER {_pct(res['all_pairs']['eer'])}, FMR1000 {_pct(res['all_pairs']['fmr1000'])}); "
                  f"extraction p50 {res['extraction_ms']['p50']:.0f} ms; {res['comparisons_per_s']:.0f} comparisons/s "
                  f"({res['comparisons_per_s_python_calls']:.0f}/s one Python call each)")
        nb = _nbis_rows(rows) if not args.no_nbis else None
        if nb is not None:
            nbs = nb.pop("scores")
            curves["NBIS mindtct+bozorth3"] = rates(nbs["genuine"], nbs["impostor_all"])[1:]
            print(f"{db} NBIS: EER {_pct(nb['fvc']['eer'])} FMR100 {_pct(nb['fvc']['fmr100'])} "
                  f"(all impostors: EER {_pct(nb['all_pairs']['eer'])}); extraction p50 "
                  f"{nb['extraction_ms']['p50']:.0f} ms; {nb['comparisons_per_s']:.0f} comparisons/s")
        entry["nbis"] = nb
        svg = out.with_name(f"{out.name}_det_{db}.svg")
        title = f"FVC2002 {db}" if folder.parent == data else db
        svg.write_text(det_svg(curves, f"DET {title} (all cross-finger impostors)"))
        entry["det_plot"] = svg.name
        report["sets"][db] = entry
    # 1:N over a synthetic gallery made from the real templates (rotated, moved, jittered, thinned)
    if all_templates:
        rng = np.random.default_rng(0)
        synth = []
        for k in range(args.gallery):
            base = all_templates[k % len(all_templates)].copy()
            keep = rng.random(len(base)) > 0.15
            m = base[keep]
            a = rng.uniform(-np.pi, np.pi)
            c, s = np.cos(a), np.sin(a)
            xy = m[:, :2] - m[:, :2].mean(0)
            m[:, 0] = c * xy[:, 0] - s * xy[:, 1] + 250 + rng.normal(0, 2, len(m))
            m[:, 1] = s * xy[:, 0] + c * xy[:, 1] + 250 + rng.normal(0, 2, len(m))
            m[:, 2] = (m[:, 2] + a) % (2 * np.pi)
            synth.append(m)
        t = time.perf_counter()
        gallery = matcher.Gallery(list(range(len(synth))), synth)
        build_s = time.perf_counter() - t
        times = []
        for probe in all_templates[:5]:
            t = time.perf_counter()
            gallery.scores(probe)
            times.append(time.perf_counter() - t)
        report["identification"] = {"gallery": len(synth), "search_s_median": statistics.median(times),
                                    "gallery_build_s": build_s,
                                    "comparisons_per_s": len(synth) / statistics.median(times)}
        print(f"1:N over {len(synth)} templates: {statistics.median(times):.2f} s per search "
              f"({len(synth) / statistics.median(times):.0f} comparisons/s)")
    _write_report(out, report)


def _truth_subset(data: Path, db: str) -> list[tuple[Path, str]]:
    from bio_fingerprint.engine.evaluation import read_truth

    return [(p, f) for p, f in read_truth(data) if p.parent.name == db]


def _clean(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.ndarray):
        return None
    if isinstance(o, (np.floating, float)):
        return round(float(o), 6)
    if isinstance(o, np.integer):
        return int(o)
    return o


def _write_report(out: Path, report: dict[str, Any]) -> None:
    report = _clean(report)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    lines = ["# Fingerprint benchmark", "", report["environment"], "",
             "FVC protocol (genuine: all impression pairs of a finger, 280 per FVC2002 B set, 448 for pyfnprint; "
             "impostor: first impressions of different fingers, 45 / 120; 'all' = every cross-finger pair, "
             "2,880 / 7,680). pyfnprint (16 fingers x 8, provenance unstated) was not used to tune the matcher (its impostor scores feed the score-to-FMR table).", "",
             "| set | matcher | EER | FMR100 | FMR1000 | ZeroFMR | EER (all impostors) | FMR1000 (all) | "
             "extraction p50 | comparisons/s |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for db, r in report["sets"].items():
        named = [(k.replace("ours_", "ours, ") + " minutiae", v) for k, v in r.items() if k.startswith("ours_")]
        for name, res in named + [("NBIS mindtct+bozorth3", r.get("nbis"))]:
            if not res:
                continue
            f, a = res["fvc"], res["all_pairs"]
            lines.append(f"| {db} | {name} | {_pct(f['eer'])} | {_pct(f['fmr100'])} | {_pct(f['fmr1000'])} | "
                         f"{_pct(f['zero_fmr'])} | {_pct(a['eer'])} | {_pct(a['fmr1000'])} | "
                         f"{res['extraction_ms']['p50']:.0f} ms | {res['comparisons_per_s']:.0f} |")
    lines += ["", "With 45 FVC impostor pairs per set, FMR1000 equals ZeroFMR; the 'all impostors' columns use 2,880.", "",
              "comparisons/s (ours): every pair of the protocol (3,205 per FVC2002 B set) scored in one compiled loop on one thread, as "
              "identification and batch jobs run them; one Python call per comparison (a single /verify):"]
    for db, r in report["sets"].items():
        for k, v in r.items():
            if k.startswith("ours_") and v and "comparisons_per_s_python_calls" in v:
                lines.append(f"- {db}, {k[5:]} minutiae: {v['comparisons_per_s_python_calls']:.0f} comparisons/s")
    lines.append("")
    for db, r in report["sets"].items():
        lines.append(f"DET plot {db}: `{r['det_plot']}`")
    if "identification" in report:
        i = report["identification"]
        lines += ["", f"1:N identification against {i['gallery']} synthetic templates (real templates rotated, "
                  f"moved, jittered, 15% minutiae dropped): {i['search_s_median']:.2f} s per search "
                  f"({i['comparisons_per_s']:.0f} comparisons/s on one core)."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def evaluate(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint.engine.evaluation import det_svg, rates, read_truth

    res = _evaluate_rows(read_truth(Path(args.directory)), args.enhancement, args.extractor)
    scores = res.pop("scores")
    res.pop("templates")
    print(json.dumps(_clean(res), indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(_clean(res), indent=2))
    if args.det:
        Path(args.det).write_text(det_svg({"all impostors": rates(scores["genuine"], scores["impostor_all"])[1:]},
                                          f"DET {args.directory}"))


def calibrate(args: argparse.Namespace, settings: Any) -> None:
    """Impostor scores of every cross-finger pair in the folders -> thresholds per FMR, into the package."""
    from importlib import resources

    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.evaluation import fvc_pairs, read_truth, score_fmr_points
    from bio_fingerprint.engine.template import ALGORITHM_VERSION

    base = _data_dir(settings) / "fingerprints"
    folders = [Path(d) for d in args.directories] or [base / "fvc2002", base / "pyfnprint"]
    impostor, genuine, sources = [], [], []
    for folder in folders:
        rows = read_truth(folder)
        cache = Path(args.cache) / f"{folder.name}_{args.extractor}.npz" if args.cache else None
        if cache and cache.is_file():
            stored = np.load(cache)
            ex = {"rows": rows, "templates": [stored[f"t{i}"] for i in range(len(rows))]}
        else:
            ex = _extract_rows(rows, args.enhancement, args.extractor)
            if cache:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, **{f"t{i}": t for i, t in enumerate(ex["templates"])})
        packed = matcher.pack(ex["templates"])
        pairs = fvc_pairs([f for _, f in ex["rows"]])
        impostor += matcher.score_pairs(packed, pairs["impostor_all"]).tolist()
        genuine += matcher.score_pairs(packed, pairs["genuine"]).tolist()
        sources.append(f"{folder.name}: {len(ex['rows'])} prints, {len(pairs['impostor_all'])} impostor pairs")
        print(sources[-1])
    imp = np.array(impostor)
    table = {
        "algorithm": f"bio-fp-{args.extractor}", "algorithm_version": ALGORITHM_VERSION, "extractor": args.extractor,
        "method": "every cross-finger pair of the folders below is an impostor comparison; for each FMR the "
                  "threshold is just above the score that fewer than FMR x N impostor scores reach. Rates below "
                  "1/N are extrapolated (measured: false).",
        "impostor_comparisons": len(imp), "genuine_comparisons": len(genuine), "sources": sources,
        "impostor_score_percentiles": {p: round(float(np.percentile(imp, float(p))), 3)
                                       for p in ("50", "90", "99", "99.9", "100")},
        "genuine_score_median": round(float(np.median(genuine)), 3) if genuine else None,
        "points": score_fmr_points(imp),
    }
    path = Path(args.out) if args.out else Path(str(resources.files("bio_fingerprint") / "weights" /
                                                    f"score_fmr_{args.extractor}.json"))
    path.write_text(json.dumps(table, indent=2))
    print(json.dumps(table["points"]))
    print(f"wrote {path}")


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


def extra(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="FVC accuracy, NBIS side by side, speed; writes OUT.md and OUT.json")
    b.add_argument("--out", default="reports/fingerprint")
    b.add_argument("--gallery", type=int, default=10000, help="synthetic gallery size for the 1:N timing")
    b.add_argument("--enhancement", default="classic")
    b.add_argument("--no-nbis", action="store_true")
    b.add_argument("--extractors", default="leader,classic", help="minutiae extractors to evaluate (comma-separated)")
    b.set_defaults(handler=bench)
    e = sub.add_parser("evaluate", help="FVC protocol on a folder with truth.csv (image,finger_id)")
    e.add_argument("directory")
    e.add_argument("--json")
    e.add_argument("--det", help="write a DET plot (SVG) here")
    e.add_argument("--enhancement", default="classic")
    e.add_argument("--extractor", default="leader", choices=["leader", "classic"])
    e.set_defaults(handler=evaluate)
    c = sub.add_parser("calibrate", help="measure the score-to-FMR table on impostor comparisons")
    c.add_argument("directories", nargs="*")
    c.add_argument("--out", help="default: the table shipped in the package")
    c.add_argument("--cache", help="folder keeping extracted templates between runs (matcher tuning)")
    c.add_argument("--enhancement", default="classic")
    c.add_argument("--extractor", default="leader", choices=["leader", "classic"])
    c.set_defaults(handler=calibrate)
    d = sub.add_parser("distort", help="write a labelled dataset of distorted prints")
    d.add_argument("source")
    d.add_argument("out")
    d.add_argument("--kinds", help="comma-separated; default all")
    d.add_argument("--per-kind", type=int, default=1)
    d.add_argument("--limit", type=int)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(handler=distort_cmd)
    t = sub.add_parser("train-classifier", help="train the distortion CNN from scratch (CPU, minutes)")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--per-class", type=int, default=160)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="default: the model file shipped in the package")
    t.set_defaults(handler=train_classifier)
    v = sub.add_parser("evaluate-classifier", help="accuracy and confusion matrix on held-out fingers")
    v.add_argument("--model")
    v.add_argument("--per-class", type=int, default=40)
    v.add_argument("--json")
    v.set_defaults(handler=evaluate_classifier)
    from bio_fingerprint.bench_search import add_parser as add_bench_search

    add_bench_search(sub)  # bench-search --size N [--shards S] --json OUT


main = service_cli(SERVICE, extra=extra)

if __name__ == "__main__":
    main()
