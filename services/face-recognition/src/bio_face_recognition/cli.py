"""Command-line entry points of the face recognition service.

``bio-face-recognition migrate|serve|worker`` (shared), plus:

* ``enroll-dir DIR --owner ACCOUNT --event NAME_OR_ID [--create] [--largest]``: bulk enrollment from a
  directory laid out one folder per person; prints the per-file report (JSON).
* ``reembed [--owner A] [--event ID] [--dry-run]``: recompute embeddings made by another model (version).
* ``purge-unknowns``: delete unknown faces past their retention now.
* ``evaluate DIR [--threshold 0.6] [--json FILE]``: accuracy on any folder with truth.csv (and pairs.csv).
* ``bench [--out reports/face-recognition]``: accuracy, speed and 1:N scale report.
* ``bench-search --size N [--json OUT]``: the approximate 1:N index against exact search (bench_search.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bio_face_recognition.app import SERVICE
from bio_shared.cli import service_cli


def _runtime(settings: Any) -> Any:
    from bio_face_recognition.app import build

    return build(settings)


def _resolve_event(rt: Any, owner: str, ref: str, create: bool) -> str:
    from bio_face_recognition.service.events import find_event

    event_id = find_event(rt, owner, ref, create=create)
    if event_id is None:
        sys.exit(f"no event {ref!r} for owner {owner!r} (use --create to create it)")
    return event_id


def enroll_dir(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_recognition.service.archive import directory_entries
    from bio_face_recognition.service.bulk import enroll_entries

    root = Path(args.directory)
    if not root.is_dir():
        sys.exit(f"{root} is not a directory")
    rt = _runtime(settings)
    event_id = _resolve_event(rt, args.owner, args.event, args.create)
    entries = directory_entries(root)

    def progress(fraction: float) -> None:
        print(f"\r{fraction:6.1%}", end="", file=sys.stderr, flush=True)

    result = enroll_entries(rt, args.owner, event_id, entries, len(entries), largest=args.largest, progress=progress,
                            source_prefix=f"dir:{root.resolve().name}:" if args.resume else "")
    print(file=sys.stderr)
    text = json.dumps(result, indent=2, default=str)
    if args.report:
        Path(args.report).write_text(text)
    print(text if args.verbose or not args.report else json.dumps({k: v for k, v in result.items() if k != "report"}))
    sys.exit(0 if result["failed"] == 0 else 3)


def reembed(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_recognition.service.maintenance import reembed as reembed_all

    result = reembed_all(_runtime(settings), owner=args.owner, event_id=args.event, dry_run=args.dry_run)
    print(json.dumps(result, indent=2))


def purge_unknowns(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_recognition.service.unknowns import purge_expired

    rt = _runtime(settings)
    total = 0
    while n := purge_expired(rt):
        total += n
    print(json.dumps({"purged": total}))


def evaluate_cmd(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_recognition.bench import embedders
    from bio_face_recognition.engine.pipeline import FacePipeline
    from bio_face_recognition.evaluation import evaluate

    pipeline = FacePipeline(detect_max_pixels=settings.detect_max_pixels, descriptor=settings.descriptor)
    chosen = embedders(pipeline)
    if not args.with_plain:
        chosen.pop("plain_dlib")
    result = evaluate(Path(args.directory), chosen, args.threshold)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str))
    for name, p in result["pipelines"].items():
        v = p["verification"]
        print(f"{name}: images {result['images']}, no face {len(p['no_face'])}, rank-1 "
              f"{p['identification']['rank1']}, verification accuracy {v['accuracy']} at {v['threshold']}, "
              f"EER {v['eer']:.4f} at {v['eer_threshold']:.3f}")


def bench_cmd(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_recognition.bench import run, summary

    data_dir = Path(args.data_dir or settings.data_dir)
    if not (data_dir / "faces").is_dir():
        sys.exit(f"no faces folder under {data_dir} (set BIOMETRICS_DATA_DIR)")
    out = Path(args.out)
    report = run(data_dir, out)
    print(f"face_recognition bench: {summary(report)}")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def bench_search_cmd(args: argparse.Namespace, settings: Any) -> None:
    from bio_face_recognition.bench_search import run

    report = run(args.size, Path(args.work), Path(args.data_dir or settings.data_dir), args.nprobe,
                 repeat=args.repeat)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)


def extra(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enroll-dir", help="bulk enrollment from a directory (one folder per person)")
    p.add_argument("directory")
    p.add_argument("--owner", required=True, help="account id that owns the event")
    p.add_argument("--event", required=True, help="event name or id")
    p.add_argument("--create", action="store_true", help="create the event if it does not exist")
    p.add_argument("--largest", action="store_true", help="photos with several faces: take the largest")
    p.add_argument("--resume", action="store_true", help="skip files a previous run of this folder enrolled")
    p.add_argument("--report", help="write the full per-file report (JSON) here")
    p.add_argument("--verbose", action="store_true", help="print the full report")
    p.set_defaults(handler=enroll_dir)

    p = sub.add_parser("reembed", help="recompute embeddings of another model or model version")
    p.add_argument("--owner")
    p.add_argument("--event")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(handler=reembed)

    p = sub.add_parser("purge-unknowns", help="delete unknown faces past their retention")
    p.set_defaults(handler=purge_unknowns)

    p = sub.add_parser("evaluate", help="accuracy on a folder with truth.csv (image,identity) [+ pairs.csv]")
    p.add_argument("directory")
    p.add_argument("--threshold", type=float, default=0.6)
    p.add_argument("--with-plain", action="store_true", help="also the plain dlib pipeline, for comparison")
    p.add_argument("--json")
    p.set_defaults(handler=evaluate_cmd)

    p = sub.add_parser("bench-search", help="1:N search at scale: approximate index vs exact (synthetic gallery)")
    p.add_argument("--size", type=int, required=True, help="gallery embeddings")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--work", default="/tmp/bio-bench-search", help="scratch folder of the bench's database and blob store")
    p.add_argument("--nprobe", type=int, help="IVF lists per probe (default: tuned on a separate probe set)")
    p.add_argument("--repeat", type=int, default=1, help="query phases (fresh processes) to take medians over")
    p.add_argument("--data-dir")
    p.set_defaults(handler=bench_search_cmd)

    p = sub.add_parser("bench", help="accuracy, speed and scale report")
    p.add_argument("--out", default="reports/face-recognition")
    p.add_argument("--data-dir")
    p.set_defaults(handler=bench_cmd)


main = service_cli(SERVICE, extra=extra)

if __name__ == "__main__":
    main(None)
