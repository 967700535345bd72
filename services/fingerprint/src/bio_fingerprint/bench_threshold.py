"""``bio-fingerprint bench-threshold``: LEADER's detection threshold chosen leaving one database family out.

LEADER keeps a pixel as a minutia when its confidence reaches a threshold (pyfing's default: 0.6). Every
development set of bench.DEV_SETS (full, distorted, and small / tiny sets of seeds 1-6 per family) is
extracted once at the lowest threshold tried; a higher threshold is the same templates without the minutiae
under it (a template's quality column is LEADER's confidence in percent). Each fold holds one family out
(DB1_B, DB2_B, pyfnprint, each with the sets made from its prints) and takes the threshold with the lowest
mean EER (FVC protocol and all cross-finger pairs, averaged) on the other two families' tuning sets (full,
distorted, small / tiny of seeds 1, 3 and 4); the held-out family's hold-out sets (seeds 2, 5 and 6, never
used for a choice) and its full set are reported at the fold's threshold, at the shipped one and at
pyfing's default 0.6.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

FAMILIES = ("DB1_B", "DB2_B", "pyfnprint")
THRESHOLDS = (0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1)
PYFING_DEFAULT = 0.6


def keep(template: np.ndarray, threshold: float) -> np.ndarray:
    """The template LEADER gives at ``threshold``, from one extracted at a lower threshold."""
    return template[template[:, 4] >= round(100 * threshold)]


def set_eers(templates: list[np.ndarray], fingers: list[str]) -> dict[str, float]:
    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.evaluation import evaluate_scores

    packed = matcher.pack(templates)
    res = evaluate_scores(len(templates), fingers, lambda pairs: matcher.score_pairs(packed, pairs))
    return {"fvc_eer": res["fvc"]["eer"], "all_eer": res["all_pairs"]["eer"], "fmr1000": res["all_pairs"]["fmr1000"]}


def roles(names: list[str]) -> dict[str, dict[str, str]]:
    """Per set: its family and role (``tuning`` or ``holdout``), from bench.DEV_SETS."""
    from bio_fingerprint.bench import DEV_SETS, HOLDOUT_SEEDS

    out = {}
    for s in DEV_SETS:
        if s.name in names:
            hold = s.kind in ("small", "tiny") and s.seed in HOLDOUT_SEEDS
            out[s.name] = {"family": s.source, "role": "holdout" if hold else "tuning", "kind": s.kind or "full"}
    return out


def choose(results: dict[str, dict[str, dict[str, float]]], set_roles: dict[str, dict[str, str]],
           shipped: float) -> list[dict[str, Any]]:
    """Leave-one-family-out folds over ``results[threshold][set]`` (keys: str(threshold))."""
    thresholds = sorted(results, key=float, reverse=True)

    def objective(t: str, sets: list[str]) -> float:
        return float(np.mean([(results[t][s]["fvc_eer"] + results[t][s]["all_eer"]) / 2 for s in sets]))

    def summary(t: str, sets: list[str]) -> dict[str, float]:
        return {k: float(np.mean([results[t][s][k] for s in sets])) for k in ("fvc_eer", "all_eer", "fmr1000")}

    folds = []
    for held in FAMILIES:
        tune = [s for s, r in set_roles.items() if r["family"] != held and r["role"] == "tuning"]
        hold = [s for s, r in set_roles.items() if r["family"] == held and r["role"] == "holdout"]
        if not tune or not hold:
            continue
        scores = {t: objective(t, tune) for t in thresholds}
        best = min(thresholds, key=lambda t: (round(scores[t], 9), -float(t)))  # ties: the more certain one
        fold: dict[str, Any] = {"held_out": held, "chosen": float(best), "tuning_sets": sorted(tune),
                                "tuning_objective": scores, "holdout_sets": sorted(hold),
                                "holdout_at_chosen": summary(best, hold)}
        for label, t in (("holdout_at_shipped", str(shipped)), ("holdout_at_pyfing_default", str(PYFING_DEFAULT))):
            if t in results:
                fold[label] = summary(t, hold)
        if held in results[best]:
            fold["full_set_at_chosen"] = results[best][held]
        folds.append(fold)
    return folds


def run(data_dir: Path, work: Path, cache: Path, thresholds: tuple[float, ...]) -> dict[str, Any]:
    from bio_fingerprint.bench import DEV_SETS, _set_rows, cached_extract
    from bio_fingerprint.engine.enhance import LEADER_THRESHOLD

    base = data_dir / "fingerprints"
    lowest = min(thresholds)
    results: dict[str, dict[str, dict[str, float]]] = {str(t): {} for t in thresholds}
    minutiae: dict[str, dict[str, float]] = {str(t): {} for t in thresholds}
    for s in DEV_SETS:
        if not (base / ("pyfnprint" if s.source == "pyfnprint" else "fvc2002")).is_dir():
            continue
        rows, _ = _set_rows(base, work, s)
        ex = cached_extract(rows, "classic", "leader", cache / f"{s.name}_leader_t{lowest:g}.npz", lowest)
        fingers = [f for _, f in rows]
        for t in thresholds:
            templates = [keep(x, t) for x in ex["templates"]]
            results[str(t)][s.name] = set_eers(templates, fingers)
            minutiae[str(t)][s.name] = float(np.mean([len(x) for x in templates]))
        print(s.name, " ".join(f"{t:g}: {100 * results[str(t)][s.name]['all_eer']:.2f} %" for t in thresholds),
              flush=True)
    set_roles = roles(list(results[str(thresholds[0])]))
    folds = choose(results, set_roles, LEADER_THRESHOLD)
    return {"shipped": LEADER_THRESHOLD, "thresholds": list(thresholds), "folds": folds,
            "chosen_by_folds": [f["chosen"] for f in folds], "sets": set_roles, "results": results,
            "minutiae_mean": minutiae,
            "method": __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""}


def _cli(args: argparse.Namespace, settings: Any) -> None:
    import json

    from bio_fingerprint.bench_report import clean

    data_dir = Path(os.environ.get("BIOMETRICS_DATA_DIR") or getattr(settings, "data_dir", None) or "../shared/data")
    thresholds = tuple(float(t) for t in args.thresholds.split(","))
    report = clean(run(data_dir, Path(args.work), Path(args.cache), thresholds))
    for f in report["folds"]:
        h = f["holdout_at_chosen"]
        print(f"holding out {f['held_out']}: chose {f['chosen']:g}; its hold-out sets: EER {100 * h['fvc_eer']:.2f} % "
              f"(FVC) / {100 * h['all_eer']:.2f} % (all pairs)", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-threshold", help="LEADER's detection threshold, chosen leaving one family out")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--thresholds", default=",".join(f"{t:g}" for t in THRESHOLDS))
    p.add_argument("--work", default="var/devsets", help="folder for the transformed sets")
    p.add_argument("--cache", default="var/bench-cache", help="folder keeping extracted templates between runs")
    p.set_defaults(handler=_cli)
