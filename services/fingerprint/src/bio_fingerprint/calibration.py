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
    classic`` measures the classic extractor's table empirically on the full sets (classic_table)."""
    from bio_fingerprint.bench_decisions import shipped_table_points
    from bio_fingerprint.engine.decision import table_path
    from bio_fingerprint.engine.template import ALGORITHM_VERSION

    if args.directories or args.work and args.extractor != "leader":
        raise SystemExit("calibrate fits the tables on the decision benchmark's sets (no folders; the "
                         "small-area profile is LEADER's)")
    if args.extractor == "classic":
        classic_table(args, data_dir)
        return
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


CLASSIC_RATES = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)


def classic_table(args: Any, data_dir: Path) -> None:
    """The classic extractor's table (a fallback, not the service's default): every cross-finger pair of
    DB1_B, DB2_B and pyfnprint (templates with their orientation fields) is an impostor comparison; a rate's
    threshold is just above the score that fewer than rate x N impostor scores reach; rates under 1/N are
    extrapolated along the last two points (measured: false)."""
    import numpy as np

    from bio_fingerprint.bench import DEV_SETS, _set_rows, cached_extract
    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.decision import table_path
    from bio_fingerprint.engine.evaluation import fvc_pairs
    from bio_fingerprint.engine.template import ALGORITHM_VERSION

    base, cache = data_dir / "fingerprints", Path(args.cache) if args.cache else None
    impostor, genuine, sources = [], [], []
    for s in DEV_SETS:
        if s.kind is not None:
            continue
        rows, _ = _set_rows(base, Path("var/fingerprint-devsets"), s)
        ex = cached_extract(rows, args.enhancement, "classic", cache / f"{s.name}_classic.npz" if cache else None)
        fingers = [f for _, f in rows]
        pairs = fvc_pairs(fingers)
        packed = matcher.pack(ex["templates"], fields=ex["fields"])
        impostor.append(matcher.score_pairs(packed, pairs["impostor_all"]))
        genuine.append(matcher.score_pairs(packed, pairs["genuine"]))
        sources.append(f"{s.name}: {len(rows)} prints, {len(pairs['impostor_all'])} impostor pairs")
    imp, gen = np.sort(np.concatenate(impostor)), np.concatenate(genuine)
    n = len(imp)
    points = []
    for rate in CLASSIC_RATES:
        k = int(np.floor(rate * n))  # at most k impostor scores may reach the threshold
        if k >= 1:
            points.append({"fmr": rate, "threshold": round(float(imp[n - k - 1]) + 1e-3, 3), "measured": True})
        else:  # log-linear extrapolation of the last two measured points
            (t1, r1), (t2, r2) = [(p["threshold"], p["fmr"]) for p in points[-2:]]
            slope = (np.log10(r2) - np.log10(r1)) / (t2 - t1)
            points.append({"fmr": rate, "threshold": round(t2 + (np.log10(rate) - np.log10(r2)) / slope, 3),
                           "measured": False})
    table = {
        "algorithm": "bio-fp-classic", "algorithm_version": ALGORITHM_VERSION, "extractor": "classic",
        "matcher": "minutiae pairing weighted by neighbour + Minutia Cylinder-Code similarity, times the "
                   "orientation-field agreement factor (engine/matcher.py)",
        "method": "every cross-finger pair of the sets below is an impostor comparison; for each FMR the threshold "
                  "is just above the score that fewer than FMR x N impostor scores reach. Rates below 1/N are "
                  "extrapolated (measured: false). Written by `bio-fingerprint calibrate --extractor classic`.",
        "impostor_comparisons": n, "genuine_comparisons": int(len(gen)), "sources": sources,
        "impostor_score_percentiles": {str(q): round(float(np.percentile(imp, q)), 3) for q in (50, 90, 99, 99.9, 100)},
        "genuine_score_median": round(float(np.median(gen)), 3),
        "points": points,
    }
    path = Path(args.out) if args.out else Path(str(table_path("classic")))
    path.write_text(json.dumps(table, indent=2) + "\n")
    print(json.dumps(points))
    print(f"wrote {path}")
