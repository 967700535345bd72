"""Benchmark of subject-level decisions: requested vs measured subject FMR (verify against a subject with
N enrolled impressions) and FPIR (identify over galleries of several sizes), on the real prints.

Thresholds come from ``engine.decision`` (single-comparison score -> FMR table, best-of-N correction).
Every set is evaluated twice: with a table fitted leave-one-database-out on the impostor scores of the
two other sets (the honest figure), and with the table the engine ships (fitted on all three sets,
including the evaluated one: flagged ``table_fitted_on_this_set``). Trials of one set share prints, so
they are not independent; the 95 % intervals are Clopper-Pearson on the trial counts and a bootstrap
over fingers (which accounts for the sharing).

``bio-fingerprint bench-decisions [--json OUT] [--cache DIR]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bio_fingerprint.decision_data import SETS, PrintSet, load_set
from bio_fingerprint.engine.decision import ScoreFmr, decide, shipped
from bio_fingerprint.engine.evaluation import score_fmr_points

FMRS = (0.01, 0.001)
FPIRS = (0.1, 0.01)
ENROLLED = (1, 3, 5)
GRID = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)  # the calibrate grid
TABLE_GRID = GRID


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = (1 - conf) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def _boot(hits: np.ndarray, groups: np.ndarray, rng: np.random.Generator, rounds: int = 400) -> tuple[float, float]:
    """95 % percentile interval of the hit rate, resampling the groups (probe fingers) with replacement."""
    ids = np.unique(groups)
    per = {g: (hits[groups == g].sum(), (groups == g).sum()) for g in ids}
    k = np.array([per[g][0] for g in ids], float)
    n = np.array([per[g][1] for g in ids], float)
    rates = []
    for _ in range(rounds):
        pick = rng.integers(0, len(ids), len(ids))
        rates.append(k[pick].sum() / max(n[pick].sum(), 1))
    return float(np.percentile(rates, 2.5)), float(np.percentile(rates, 97.5))


def _impostors(s: PrintSet, scores: np.ndarray) -> np.ndarray:
    fingers = np.array(s.fingers)
    mask = fingers[:, None] != fingers[None, :]
    return scores[mask]


def _rate(hits: np.ndarray, groups: np.ndarray, requested: float, rng: np.random.Generator) -> dict[str, Any]:
    k, n = int(hits.sum()), int(len(hits))
    return {"requested": requested, "measured": k / max(n, 1), "false": k, "trials": n,
            "ci95_clopper_pearson": clopper_pearson(k, n), "ci95_finger_bootstrap": _boot(hits, groups, rng),
            "within_ci": bool(clopper_pearson(k, n)[0] <= requested <= clopper_pearson(k, n)[1]),
            "at_most_requested": bool(clopper_pearson(k, n)[0] <= requested)}


def _enrollments(s: PrintSet, n: int, per_finger: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    out = []
    for f, idx in s.by_finger().items():
        if len(idx) < n + 1:
            continue
        for _ in range(per_finger):
            out.append((f, rng.choice(idx, n, replace=False)))
    return out


def verify_trials(s: PrintSet, scores: np.ndarray, n: int, rng: np.random.Generator,
                  per_finger: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Best-of-n scores of every probe of another finger against random n-impression enrollments."""
    best, groups = [], []
    fingers = np.array(s.fingers)
    for f, enrolled in _enrollments(s, n, per_finger, rng):
        probes = np.flatnonzero(fingers != f)
        best.append(scores[np.ix_(probes, enrolled)].max(axis=1))
        groups.append(fingers[probes])
    return np.concatenate(best), np.concatenate(groups)


def identify_trials(s: PrintSet, scores: np.ndarray, subjects: int, per_subject: int, draws: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Best gallery score of each non-mated search: galleries of ``subjects`` fingers (``per_subject``
    impressions each) drawn at random, probes = every print of the fingers left out."""
    by = s.by_finger()
    names = list(by)
    fingers = np.array(s.fingers)
    best, groups = [], []
    for _ in range(draws):
        chosen = rng.choice(len(names), subjects, replace=False)
        gallery = np.concatenate([rng.choice(by[names[c]], per_subject, replace=False) for c in chosen])
        inside = {names[c] for c in chosen}
        probes = np.array([i for i, f in enumerate(s.fingers) if f not in inside])
        best.append(scores[np.ix_(probes, gallery)].max(axis=1))
        groups.append(fingers[probes])
    return np.concatenate(best), np.concatenate(groups)


def dependence(s: PrintSet, scores: np.ndarray, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Measured P(best of N >= t) against the independence prediction 1 - (1 - FMR(t))^N, in-sample."""
    imp = _impostors(s, scores)
    rows = []
    for n in ENROLLED[1:]:
        best, _ = verify_trials(s, scores, n, rng)
        for q in (0.99, 0.999):
            t = float(np.quantile(imp, q))
            p = float((imp >= t).mean())
            rows.append({"enrolled": n, "threshold": t, "single_fmr": p, "independent_prediction": 1 - (1 - p) ** n,
                         "measured": float((best >= t).mean()), "trials": int(len(best))})
    return rows


def evaluate_set(s: PrintSet, scores: np.ndarray, tables: dict[str, tuple[ScoreFmr, bool]],
                 rng: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {"prints": len(s.templates), "fingers": len(s.by_finger()), "verify": [], "identify": []}
    trials = {n: verify_trials(s, scores, n, rng) for n in ENROLLED}
    for label, (table, fitted_here) in tables.items():
        for n, (best, groups) in trials.items():
            for fmr in FMRS:
                d = decide(table, fmr, n)
                out["verify"].append({"table": label, "table_fitted_on_this_set": fitted_here, "enrolled": n,
                                      "threshold": d.threshold, "extrapolated": d.extrapolated,
                                      **_rate(best >= d.threshold, groups, fmr, rng)})
    fingers = len(s.by_finger())
    sizes = sorted({k for k in (2, 4, 8, 12) if k < fingers})
    for size in sizes:
        best, groups = identify_trials(s, scores, size, 3, 150, rng)
        for label, (table, fitted_here) in tables.items():
            for fpir in FPIRS:
                d = decide(table, fpir, size * 3)
                out["identify"].append({"table": label, "table_fitted_on_this_set": fitted_here,
                                        "gallery_subjects": size, "gallery_templates": size * 3,
                                        "threshold": d.threshold, "extrapolated": d.extrapolated,
                                        **_rate(best >= d.threshold, groups, fpir, rng)})
    out["dependence"] = dependence(s, scores, rng)
    return out


def pooled_identify(sets: dict[str, PrintSet], rng: np.random.Generator) -> list[dict[str, Any]]:
    """Larger galleries from the three sets together (the shipped table, fitted on all of them: flagged)."""
    pool = PrintSet("pooled", [f"{n}:{f}" for n, s in sets.items() for f in s.fingers],
                    [t for s in sets.values() for t in s.templates])
    scores = pool.score_matrix()
    out = []
    for size in (16, 24):
        best, groups = identify_trials(pool, scores, size, 3, 100, rng)
        for fpir in FPIRS:
            d = decide(shipped(), fpir, size * 3)
            out.append({"table": "shipped (all sets)", "table_fitted_on_this_set": True, "gallery_subjects": size,
                        "gallery_templates": size * 3, "threshold": d.threshold, "extrapolated": d.extrapolated,
                        **_rate(best >= d.threshold, groups, fpir, rng)})
    return out


def run(data_dir: Path, cache: Path | None, seed: int = 0) -> dict[str, Any]:
    base = data_dir / "fingerprints"
    sets = {n: s for n in SETS if (s := load_set(base, n, cache)) is not None}
    scores = {n: s.score_matrix() for n, s in sets.items()}
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {"sets": {}, "method": __doc__.split("\n\n")[1].replace("\n", " ")}
    for name, s in sets.items():
        others = [n for n in sets if n != name]
        imp = np.concatenate([_impostors(sets[o], scores[o]) for o in others])
        lodo = ScoreFmr(score_fmr_points(imp, TABLE_GRID))
        tables = {f"fitted on {'+'.join(others)}": (lodo, False), "shipped (all sets)": (shipped(), True)}
        report["sets"][name] = evaluate_set(s, scores[name], tables, rng)
    if len(sets) > 1:
        report["pooled_identify"] = pooled_identify(sets, rng)
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Subject-level decisions: requested vs measured", "", report["method"], "",
             "## Verify against a subject (best of N enrolled impressions)", "",
             "| set | table | N | requested FMR | measured | 95% CI (Clopper-Pearson) | 95% CI (finger bootstrap) | "
             "false / trials |", "|---|---|---:|---:|---:|---|---|---:|"]
    for name, r in report["sets"].items():
        for v in r["verify"]:
            lines.append(_row(name, v, str(v["enrolled"])))
    lines += ["", "## Identify (FPIR over galleries; 3 templates per subject)", "",
              "| set | table | subjects / templates | requested FPIR | measured | 95% CI (Clopper-Pearson) | "
              "95% CI (finger bootstrap) | false / searches |", "|---|---|---:|---:|---:|---|---|---:|"]
    for name, r in report["sets"].items():
        for v in r["identify"]:
            lines.append(_row(name, v, f"{v['gallery_subjects']} / {v['gallery_templates']}"))
    if report.get("pooled_identify"):
        lines += ["", "Pooled galleries (all three sets, probes of fingers left out; cross-sensor impostors included):", ""]
        lines += [_row("pooled", v, f"{v['gallery_subjects']} / {v['gallery_templates']}") for v in report["pooled_identify"]]
    lines += ["", "## Dependence of best-of-N impostor scores (in-sample)", "",
              "| set | N | single-comparison FMR | independence predicts | measured |", "|---|---:|---:|---:|---:|"]
    for name, r in report["sets"].items():
        for d in r["dependence"]:
            lines.append(f"| {name} | {d['enrolled']} | {d['single_fmr']:.4f} | {d['independent_prediction']:.4f} | "
                         f"{d['measured']:.4f} |")
    return "\n".join(lines) + "\n"


def _row(name: str, v: dict[str, Any], size: str) -> str:
    lo, hi = v["ci95_clopper_pearson"]
    blo, bhi = v["ci95_finger_bootstrap"]
    flag = " (fitted on this set)" if v["table_fitted_on_this_set"] else ""
    return (f"| {name} | {v['table']}{flag} | {size} | {v['requested']:g} | {v['measured']:.4f} | "
            f"{lo:.4f}-{hi:.4f} | {blo:.4f}-{bhi:.4f} | {v['false']} / {v['trials']} |")


def main(args: argparse.Namespace, settings: Any) -> None:
    import os

    from bio_shared.inference import configure_torch

    configure_torch()
    data = Path(os.environ.get("BIOMETRICS_DATA_DIR") or getattr(settings, "data_dir", None) or "../shared/data")
    report = run(data, Path(args.cache) if args.cache else None, args.seed)
    md = markdown(report)
    print(md)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float))
        out.with_suffix(".md").write_text(md)
        print(f"wrote {out} and {out.with_suffix('.md')}")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-decisions", help="requested vs measured subject FMR and FPIR on the real prints")
    p.add_argument("--json", help="write the report here (and OUT.md beside it)")
    p.add_argument("--cache", help="folder keeping extracted templates between runs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=main)
