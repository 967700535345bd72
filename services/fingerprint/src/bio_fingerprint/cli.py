"""Command-line entry points of the fingerprint service.

``bio-fingerprint migrate|serve|worker`` (shared), plus:

* ``bench [--out reports/fingerprint]``: FVC protocol and all cross-finger pairs (EER, FMR100, FMR1000,
  ZeroFMR, DET plots) on every development set (DB1_B, DB2_B, pyfnprint and the small / tiny / distorted
  sets made from them), each with its tuned-on flag and command; NBIS (mindtct + bozorth3) side by side;
  extraction / comparison / 1:N speed (bench.py).
* ``bench-decisions [--json OUT]``: requested vs measured subject FMR and FPIR (bench_decisions.py).
* ``bench-search --size N [--shards S] --json OUT``: two-stage indexed 1:N search, sharded (bench_search.py).
* ``bench-threshold [--json OUT]``: LEADER's detection threshold chosen leaving one family out (bench_threshold.py).
* ``shard-worker --shard I``: a Celery worker of shard I of the two-stage 1:N search (queue fingerprint-shard-I;
  one process, so the shard it loads stays in memory).
* ``evaluate DIR [--json FILE] [--enhancement classic|learned]``: the FVC protocol on any folder with truth.csv.
* ``devset SOURCE OUT --kind small|tiny|distorted``: a transformed development set (engine/devsets.py).
* ``calibrate [DIR ...]``: measure the score-to-FMR table on impostor comparisons and write it into the package.
* ``distort SRC_DIR OUT_DIR [--kinds ...] [--per-kind N]``: labelled distorted dataset from clean prints.
* ``train-classifier [--epochs N] [--out FILE]`` / ``evaluate-classifier``: the distortion CNN.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from bio_fingerprint.app import SERVICE
from bio_shared.cli import exec_worker, service_cli


def _data_dir(settings: Any) -> Path:
    import os

    return Path(os.environ.get("BIOMETRICS_DATA_DIR") or getattr(settings, "data_dir", None) or "../shared/data")


def _gray(path: Path) -> np.ndarray:
    from bio_shared.images import decode_image

    return decode_image(path.read_bytes(), mode="gray", max_bytes=1 << 30).pixels


def bench(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint import bench as report

    report.bench(args, _data_dir(settings))


def evaluate(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint import bench as report

    report.evaluate(args)


def devset(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint import bench as report

    report.devset(args, _data_dir(settings))


def calibrate(args: argparse.Namespace, settings: Any) -> None:
    from bio_fingerprint.calibration import calibrate as run

    run(args, _data_dir(settings))


def extra(sub: argparse._SubParsersAction) -> None:
    from bio_fingerprint import bench_decisions, tools

    bench_decisions.add_parser(sub)
    b = sub.add_parser("bench", help="FVC accuracy, NBIS side by side, speed; writes OUT.md and OUT.json")
    b.add_argument("--out", default="reports/fingerprint")
    b.add_argument("--gallery", type=int, default=10000, help="synthetic gallery size for the 1:N timing")
    b.add_argument("--enhancement", default="classic")
    b.add_argument("--no-nbis", action="store_true")
    b.add_argument("--extractors", default="leader,classic", help="minutiae extractors to evaluate (comma-separated; "
                   "transformed sets use the first)")
    b.add_argument("--sets", help="comma-separated development sets (default: all)")
    b.add_argument("--work", default="var/fingerprint-devsets", help="folder for the transformed sets")
    b.add_argument("--cache", help="folder keeping extracted templates between runs")
    b.set_defaults(handler=bench)
    ds = sub.add_parser("devset", help="write a transformed development set (folder with truth.csv)")
    ds.add_argument("source", help="DB1_B, DB2_B, pyfnprint or a folder with truth.csv")
    ds.add_argument("out")
    ds.add_argument("--kind", default="small", choices=["small", "tiny", "distorted"])
    ds.add_argument("--seed", type=int, default=1)
    ds.set_defaults(handler=devset)
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
    c.add_argument("--work", help="also fit the small / tiny crops of the tuning seeds (bench.py's development "
                   "sets, written here) and write the small-area table instead of the full-area one")
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
    d.set_defaults(handler=tools.distort_cmd)
    t = sub.add_parser("train-classifier", help="train the distortion CNN from scratch (CPU, minutes)")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--per-class", type=int, default=160)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="default: the model file shipped in the package")
    t.set_defaults(handler=tools.train_classifier)
    v = sub.add_parser("evaluate-classifier", help="accuracy and confusion matrix on held-out fingers")
    v.add_argument("--model")
    v.add_argument("--per-class", type=int, default=40)
    v.add_argument("--json")
    v.set_defaults(handler=tools.evaluate_classifier)
    w = sub.add_parser("shard-worker", help="serve one shard of the two-stage 1:N search (distributed mode)")
    w.add_argument("--shard", type=int, required=True, help="0 .. BIO_FINGERPRINT_SHARDS - 1")
    w.set_defaults(handler=_shard_worker)
    from bio_fingerprint.bench_search import add_parser as add_bench_search
    from bio_fingerprint.bench_threshold import add_parser as add_bench_threshold

    add_bench_search(sub)  # bench-search --size N [--shards S] --json OUT
    add_bench_threshold(sub)  # bench-threshold --json OUT


def _shard_worker(args: argparse.Namespace, settings: Any) -> None:
    if not 0 <= args.shard < settings.shards:
        raise SystemExit(f"--shard must be 0-{settings.shards - 1} (BIO_FINGERPRINT_SHARDS={settings.shards})")
    from bio_fingerprint.service.search import shard_queue

    # solo pool: the task runs in this process, whose gallery cache keeps the shard between searches
    exec_worker("bio_fingerprint", shard_queue(args.shard), "solo", 1, [])


main = service_cli(SERVICE, extra=extra)

if __name__ == "__main__":
    main(None)
