"""``bio-fingerprint bench-threshold``: LEADER's detection threshold, and the weight of its less certain
minutiae in the matcher's common-area counts, chosen together leaving one database family out.

LEADER keeps a pixel as a minutia when its confidence reaches a threshold (pyfing's default: 0.6); the
matcher counts a minutia under 60 % with a weight (matcher.UNRELIABLE_WEIGHT) in the score's common-area
denominators. Every
development set of bench.DEV_SETS (full, distorted, and small / tiny sets of seeds 1-6 per family) is
extracted once at the lowest threshold tried; a higher threshold is the same templates without the minutiae
under it (a template's quality column is LEADER's confidence in percent). Each fold holds one family out
(DB1_B, DB2_B, pyfnprint, each with the sets made from its prints) and takes, on the other two families'
tuning sets (full, distorted, small / tiny of seeds 1, 3 and 4), the most conservative pair within one
standard error of the lowest mean EER (FVC protocol and all cross-finger pairs, averaged; see _best);
the held-out family's hold-out sets (seeds 2, 5 and 6, never used for a choice) and its full set are reported at the fold's choice, at the shipped one and at pyfing's
default 0.6 with every minutia counted in full. The shipped pair (engine/enhance.py, engine/matcher.py) is
the same rule applied to every family's tuning sets (``choice_on_all_tuning_sets``); the folds are what
that rule gives on a family it never saw. Results are keyed ``"threshold@weight"``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

FAMILIES = ("DB1_B", "DB2_B", "pyfnprint")
THRESHOLDS = (0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1)
WEIGHTS = (1.0, 0.5, 0.25, 0.0)
PYFING_DEFAULT = "0.6@1"  # pyfing's threshold, every minutia counted in full (the matcher before the weight)


def key(threshold: float, weight: float) -> str:
    return f"{threshold:g}@{weight:g}"


def _order(k: str) -> tuple[float, float]:
    t, w = k.split("@")
    return float(t), float(w)


def keep(template: np.ndarray, threshold: float) -> np.ndarray:
    """The template LEADER gives at ``threshold``, from one extracted at a lower threshold."""
    return template[template[:, 4] >= round(100 * threshold)]


def set_eers(templates: list[np.ndarray], fingers: list[str], weight: float,
             fields: list[np.ndarray] | None = None) -> dict[str, float]:
    from bio_fingerprint.engine import matcher
    from bio_fingerprint.engine.evaluation import evaluate_scores

    packed = matcher.pack(templates, weight, fields=fields)
    res = evaluate_scores(len(templates), fingers, lambda pairs: matcher.score_pairs(packed, pairs),
                          intervals=False)
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


Results = dict[str, dict[str, dict[str, float]]]  # results[key(threshold, weight)][set] -> fvc_eer, all_eer, fmr1000


def _per_set(results: Results, k: str, sets: list[str]) -> np.ndarray:
    return np.array([(results[k][s]["fvc_eer"] + results[k][s]["all_eer"]) / 2 for s in sets])


def _best(results: Results, sets: list[str]) -> tuple[str, dict[str, float]]:
    """The most conservative cell within one standard error of the best mean EER (the one-standard-error
    rule, Hastie, Tibshirani & Friedman, ESL 7.10): the standard error is that of the per-set differences
    to the best cell, and the most conservative is the highest threshold (fewer, more certain minutiae),
    then the fullest weight. Cells that tie with the best on these sets are no evidence for a less certain
    template; choosing the plain minimum (0.2 at weight 0.5 on every family's tuning sets) gave a
    score-to-FMR table with a heavier extrapolated tail, which lost identifications at FPIR 0.001 in a
    1,020-template gallery (14 of 20 mates found against 17)."""
    grid = sorted(results, key=_order, reverse=True)  # most conservative first
    scores = {k: float(_per_set(results, k, sets).mean()) for k in grid}
    best = min(grid, key=lambda k: (round(scores[k], 9), tuple(-v for v in _order(k))))
    at_best = _per_set(results, best, sets)
    for k in grid:
        d = _per_set(results, k, sets) - at_best
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
        if d.mean() <= se + 1e-12:
            return k, scores
    return best, scores


def ship_choice(results: Results, set_roles: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The rule that sets the shipped threshold: the same choice on every family's tuning sets (the folds
    above measure how well this rule does on a family it has not seen; no hold-out set takes part)."""
    tune = sorted(s for s, r in set_roles.items() if r["role"] == "tuning")
    best, scores = _best(results, tune)
    return {"chosen": best, "tuning_sets": tune, "tuning_objective": scores}


def choose(results: Results, set_roles: dict[str, dict[str, str]], shipped: str) -> list[dict[str, Any]]:
    """Leave-one-family-out folds over ``results[key(threshold, weight)][set]``."""

    def summary(t: str, sets: list[str]) -> dict[str, float]:
        return {k: float(np.mean([results[t][s][k] for s in sets])) for k in ("fvc_eer", "all_eer", "fmr1000")}

    folds = []
    for held in FAMILIES:
        tune = [s for s, r in set_roles.items() if r["family"] != held and r["role"] == "tuning"]
        hold = [s for s, r in set_roles.items() if r["family"] == held and r["role"] == "holdout"]
        if not tune or not hold:
            continue
        best, scores = _best(results, tune)
        fold: dict[str, Any] = {"held_out": held, "chosen": best, "tuning_sets": sorted(tune),
                                "tuning_objective": scores, "holdout_sets": sorted(hold),
                                "holdout_at_chosen": summary(best, hold)}
        for label, t in (("holdout_at_shipped", shipped), ("holdout_at_pyfing_default", PYFING_DEFAULT)):
            if t in results:
                fold[label] = summary(t, hold)
        if held in results[best]:
            fold["full_set_at_chosen"] = results[best][held]
        folds.append(fold)
    return folds


def run(data_dir: Path, work: Path, cache: Path, thresholds: tuple[float, ...],
        weights: tuple[float, ...] = WEIGHTS) -> dict[str, Any]:
    from bio_fingerprint.bench import DEV_SETS, _set_rows, cached_extract
    from bio_fingerprint.engine.enhance import LEADER_THRESHOLD
    from bio_fingerprint.engine.matcher import UNRELIABLE_WEIGHT

    base = data_dir / "fingerprints"
    lowest = min(thresholds)
    grid = [(t, w) for t in thresholds for w in weights]
    results: Results = {key(t, w): {} for t, w in grid}
    minutiae: dict[str, dict[str, float]] = {f"{t:g}": {} for t in thresholds}
    for s in DEV_SETS:
        if not (base / ("pyfnprint" if s.source == "pyfnprint" else "fvc2002")).is_dir():
            continue
        rows, _ = _set_rows(base, work, s)
        ex = cached_extract(rows, "classic", "leader", cache / f"{s.name}_leader_t{lowest:g}.npz", lowest)
        fingers = [f for _, f in rows]
        for t in thresholds:
            templates = [keep(x, t) for x in ex["templates"]]
            minutiae[f"{t:g}"][s.name] = float(np.mean([len(x) for x in templates]))
            for w in weights:
                results[key(t, w)][s.name] = set_eers(templates, fingers, w, ex["fields"])
        print(s.name, " ".join(f"{k}: {100 * results[k][s.name]['all_eer']:.2f} %" for k in results), flush=True)
    set_roles = roles(list(results[key(*grid[0])]))
    shipped = key(LEADER_THRESHOLD, UNRELIABLE_WEIGHT)
    folds = choose(results, set_roles, shipped)
    return {"shipped": shipped, "thresholds": list(thresholds), "weights": list(weights), "folds": folds,
            "choice_on_all_tuning_sets": ship_choice(results, set_roles),
            "chosen_by_folds": [f["chosen"] for f in folds], "sets": set_roles, "results": results,
            "minutiae_mean": minutiae,
            "method": __doc__.split("\n\n", 1)[1].strip() if __doc__ else ""}


def _cli(args: argparse.Namespace, settings: Any) -> None:
    import json

    from bio_fingerprint.bench_report import clean

    data_dir = Path(os.environ.get("BIOMETRICS_DATA_DIR") or getattr(settings, "data_dir", None) or "../shared/data")
    thresholds = tuple(float(t) for t in args.thresholds.split(","))
    weights = tuple(float(w) for w in args.weights.split(","))
    report = clean(run(data_dir, Path(args.work), Path(args.cache), thresholds, weights))
    for f in report["folds"]:
        h = f["holdout_at_chosen"]
        print(f"holding out {f['held_out']}: chose {f['chosen']} (threshold@weight); its hold-out sets: EER "
              f"{100 * h['fvc_eer']:.2f} % (FVC) / {100 * h['all_eer']:.2f} % (all pairs)", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    ship = report["choice_on_all_tuning_sets"]["chosen"]
    print(f"on every family's tuning sets: {ship} (shipped: {report['shipped']})", flush=True)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-threshold", help="LEADER's detection threshold and the matcher's weight of its less "
                                               "certain minutiae, chosen leaving one family out")
    p.add_argument("--json", help="write the report here")
    p.add_argument("--thresholds", default=",".join(f"{t:g}" for t in THRESHOLDS))
    p.add_argument("--weights", default=",".join(f"{w:g}" for w in WEIGHTS),
                   help="weights of minutiae under 60 %% confidence in the common-area counts")
    p.add_argument("--work", default="var/devsets", help="folder for the transformed sets")
    p.add_argument("--cache", default="var/bench-cache", help="folder keeping extracted templates between runs")
    p.set_defaults(handler=_cli)
