"""Command-line entry points of the face verify service: migrate, serve, worker (bio_shared), and
``evaluate`` (accuracy on any folder with truth.csv), ``calibrate`` (the dlib distance -> score mapping) and
``bench`` (accuracy, frontal check and latency report). Argument wiring only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bio_face_verify.app import SERVICE
from bio_shared.cli import service_cli


def _evaluate(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_verify.evaluate import evaluate, markdown_table
    from bio_shared.inference import configure_torch

    configure_torch()
    report = evaluate(Path(args.folder), facenet_weights=args.facenet_weights or settings.facenet_weights,
                      max_side=settings.max_side, progress=print)
    print(markdown_table(report))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2))
        out.with_suffix(".md").write_text(markdown_table(report) + "\n")
        print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def _bench(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_verify.bench import run_bench, summary

    report = run_bench(settings, Path(args.out), args.cpu, args.runs, args.jobs, skip_accuracy=args.skip_accuracy)
    print(summary(report))
    print(f"wrote {Path(args.out).with_suffix('.md')} and {Path(args.out).with_suffix('.json')}")


def _calibrate(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_verify.calibrate import calibrate
    from bio_shared.inference import configure_torch

    configure_torch()
    doc = calibrate(Path(args.faces or Path(settings.data_dir) / "faces"), Path(args.out) if args.out else None,
                    progress=print)
    print(json.dumps(doc, indent=2))


def extra(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="accuracy (accuracy at threshold, EER, TAR at FAR 1 %%) of every available "
                                         "pipeline on a folder with truth.csv (image,identity) [+ pairs.csv]")
    ev.add_argument("folder", help="folder with truth.csv, or whose subfolders have one (pooled)")
    ev.add_argument("--facenet-weights", type=Path, default=None)
    ev.add_argument("--out", default=None, help="write OUT.md and OUT.json")
    ev.set_defaults(handler=_evaluate)
    cal = sub.add_parser("calibrate", help="fit the platform's dlib distance -> score mapping on labelled face pairs "
                                           "(fit on faces/face_recognition, checked on the other face folders)")
    cal.add_argument("--faces", default=None, help="faces folder (default $BIOMETRICS_DATA_DIR/faces)")
    cal.add_argument("--out", default=None, help="write the mapping here, e.g. "
                                                 "shared/src/bio_shared/calibration/dlib_resnet_v1.json")
    cal.set_defaults(handler=_calibrate)
    b = sub.add_parser("bench", help="accuracy on $BIOMETRICS_DATA_DIR/faces and latency on one core")
    b.add_argument("--out", default="reports/face-verify", help="writes OUT.md and OUT.json")
    b.add_argument("--cpu", type=int, default=None, help="core to pin to (default: the last one available)")
    b.add_argument("--runs", type=int, default=20, help="timed runs per latency figure")
    b.add_argument("--jobs", type=int, default=20, help="jobs for the throughput figure")
    b.add_argument("--skip-accuracy", action="store_true")
    b.set_defaults(handler=_bench)


main = service_cli(SERVICE, extra=extra)

if __name__ == "__main__":
    main(None)
