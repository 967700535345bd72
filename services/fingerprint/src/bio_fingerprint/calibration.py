"""``bio-fingerprint calibrate``: the score-to-FMR table the service reads, a conservative tail model of
the impostor scores of the decision benchmark's sets (engine/decision.py, bench_decisions.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def calibrate(args: Any, data_dir: Path) -> None:
    """Impostor scores of every cross-finger pair within each population (DB1_B, DB2_B, pyfnprint and their
    small / tiny crops of the tuning seeds; the probe path of /verify) -> per population a GPD tail and its
    bootstrap over fingers -> the table at the confidence level chosen leaving one family out, written into
    the package: the ``full-area`` table from the full sets, the ``small-area`` one with the crops (``--work``).
    Only the LEADER extractor's tables are fitted this way (the sets are extracted with it); ``--extractor
    classic`` is refused."""
    from bio_fingerprint.bench_decisions import shipped_table_points
    from bio_fingerprint.engine.decision import table_path
    from bio_fingerprint.engine.template import ALGORITHM_VERSION

    if args.extractor != "leader" or args.directories:
        raise SystemExit("calibrate fits the LEADER table on the decision benchmark's sets (no folders, no "
                         "other extractor)")
    work = Path(args.work) if args.work else None
    profile = "small-area" if work else "full-area"
    fit = shipped_table_points(data_dir, Path(args.cache) if args.cache else None, work)
    level = fit["level"]
    table: dict[str, Any] = {
        "algorithm": "bio-fp-leader", "algorithm_version": ALGORITHM_VERSION, "extractor": "leader", "profile": profile,
        "matcher": "minutiae pairing weighted by neighbour + Minutia Cylinder-Code similarity (engine/matcher.py)",
        "method": "per population (a full set, or the small / tiny crops of a set's tuning seeds pooled), every "
                  "cross-finger pair is an impostor comparison; the top 10 % of a population's impostor scores is "
                  "a generalised Pareto tail (Zhang-Stephens fit), refitted on 400 bootstrap samples of its "
                  "fingers; a point's threshold is the bootstrap quantile at `level` of the population with the "
                  "highest one (`set_by`). `level` is the lowest at which, leaving each family (a set with its "
                  "crops) out, the table of the others held every decision of bench-decisions on it. measured: "
                  "false where that population has fewer than one impostor comparison per rate (model only).",
        "level": level["level"], "level_held": level["held"], "level_tuned_on": level["tuned_on"],
        "level_tried": level["tried"],
        "impostor_comparisons": int(sum(fit["impostor_comparisons"].values())),
        "impostor_comparisons_per_set": fit["impostor_comparisons"], "fingers_per_set": fit["fingers"],
        "sources": [f"{n}: {fit['fingers'][n]} fingers, {k} impostor pairs"
                    for n, k in fit["impostor_comparisons"].items()],
        "points": fit["points"],
    }
    path = Path(args.out) if args.out else Path(str(table_path("leader", profile)))
    path.write_text(json.dumps(table, indent=2) + "\n")
    print(json.dumps(table["points"]))
    print(f"wrote {path} (level {level['level']:g}, tuned on {'+'.join(level['tuned_on'])})")
