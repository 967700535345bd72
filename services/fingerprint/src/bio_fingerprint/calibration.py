"""``bio-fingerprint calibrate``: the score-to-FMR table the service reads, measured on impostor pairs."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np


def calibrate(args: Any, data_dir: Path) -> None:
    """Impostor scores of every cross-finger pair in the folders -> thresholds per FMR, into the package."""
    from bio_fingerprint.bench import cached_extract
    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.evaluation import fvc_pairs, read_truth, score_fmr_points
    from bio_fingerprint.engine.template import ALGORITHM_VERSION

    base = data_dir / "fingerprints"
    folders = [Path(d) for d in args.directories] or [base / "fvc2002", base / "pyfnprint"]
    impostor, genuine, sources = [], [], []
    for folder in folders:
        rows = read_truth(folder)
        cache = Path(args.cache) / f"{folder.name}_{args.extractor}_rows.npz" if args.cache else None
        ex = cached_extract(rows, args.enhancement, args.extractor, cache)
        packed = matcher.pack(ex["templates"])
        pairs = fvc_pairs([f for _, f in ex["rows"]])
        impostor += matcher.score_pairs(packed, pairs["impostor_all"]).tolist()
        genuine += matcher.score_pairs(packed, pairs["genuine"]).tolist()
        sources.append(f"{folder.name}: {len(ex['rows'])} prints, {len(pairs['impostor_all'])} impostor pairs")
        print(sources[-1])
    imp = np.array(impostor)
    table = {
        "algorithm": f"bio-fp-{args.extractor}", "algorithm_version": ALGORITHM_VERSION, "extractor": args.extractor,
        "matcher": "minutiae pairing weighted by neighbour + Minutia Cylinder-Code similarity (engine/matcher.py)",
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
