"""Benchmark of subject-level decisions: requested vs measured subject FMR (verify against a subject with
N enrolled impressions) and FPIR (identify over galleries of several sizes), on the real prints.

Thresholds come from ``engine.decision``: a score -> FMR table and the best-of-N (Sidak) correction. The
table is the conservative tail model of engine.decision (GPD tail per set, upper bound over a bootstrap of
the fingers at a confidence ``level``, largest over the sets). Every set is held out in turn: its table is
fitted on the two other sets only, and the level is chosen on those two as well (inner folds: fit on one,
check the other; the lowest level at which no inner decision exceeds its requested rate beyond its
Clopper-Pearson interval), so nothing about the held-out set chooses anything (``tuned_on`` names the sets
that did). For comparison each set is also scored with the previous method (an empirical table pooled
over the two other sets) and with the table the package ships (fitted on all three sets, including the
evaluated one: flagged ``table_fitted_on_this_set``). Trials of one set share prints, so they are not
independent; the 95 % intervals are Clopper-Pearson on the trial counts and a bootstrap over fingers
(which accounts for the sharing). FNMR is the genuine cost of a verify threshold (best of the N enrolled
impressions against another impression of the same finger).

With ``--work`` (the default folder of bench.py's transformed sets) every table is also checked on the small
and tiny crops of the hold-out seeds, and the shipped ``small-area`` table (fitted on the tuning seeds' crops
too; ``--fit-crops`` makes the fold tables do the same) beside the default one.

``bio-fingerprint bench-decisions [--json OUT] [--cache DIR] [--work DIR] [--fit-crops]``
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bio_fingerprint.bench import HOLDOUT_SEEDS, TUNING_SEEDS
from bio_fingerprint.decision_data import CROP_KINDS, SETS, PrintSet, load_crops, load_set
from bio_fingerprint.engine.decision import (
    ImpostorScores,
    ScoreFmr,
    bootstrap_thresholds,
    conservative_points,
    decide,
    shipped,
    shipped_table,
    table_path,
)
from bio_fingerprint.engine.evaluation import score_fmr_points

FMRS = (0.01, 0.001)
FPIRS = (0.1, 0.01)
ENROLLED = (1, 3, 5)
GALLERIES = (2, 4, 8, 12)  # subjects per gallery (3 impressions each), those smaller than the set
GRID = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001)  # the previous (empirical) table's grid
TABLE_GRID = GRID
LEVELS = (0.5, 0.75, 0.9, 0.95, 0.99)  # confidence levels the tail model's upper bound may take
ROUNDS = 400  # bootstrap samples of the fingers per set


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


def _rate(hits: np.ndarray, groups: np.ndarray, requested: float, rng: np.random.Generator | None
          ) -> dict[str, Any]:
    """``within_ci``: the requested rate lies inside the measured one's interval; ``at_most_requested``:
    the measured rate is not above the requested one beyond its interval (the rate holds)."""
    k, n = int(hits.sum()), int(len(hits))
    lo, hi = clopper_pearson(k, n)
    return {"requested": requested, "measured": k / max(n, 1), "false": k, "trials": n,
            "ci95_clopper_pearson": (lo, hi),
            "ci95_finger_bootstrap": _boot(hits, groups, rng) if rng is not None else None,
            "within_ci": bool(lo <= requested <= hi), "at_most_requested": bool(lo <= requested)}


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


@dataclass
class Trials:
    """Trials of one set, drawn once and scored under every table: verify (per N: best impostor score,
    probe finger, best genuine score) and identify (per gallery size: best score of a non-mated search,
    probe finger)."""

    verify: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    identify: dict[int, tuple[np.ndarray, np.ndarray]]


def genuine_trials(s: PrintSet, scores: np.ndarray, n: int, rng: np.random.Generator, per_finger: int = 8
                   ) -> np.ndarray:
    """Best-of-n scores of every other impression of the enrolled finger (the FNMR side of a threshold)."""
    best = []
    for f, enrolled in _enrollments(s, n, per_finger, rng):
        probes = np.array([i for i in s.by_finger()[f] if i not in set(enrolled.tolist())])
        best.append(scores[np.ix_(probes, enrolled)].max(axis=1))
    return np.concatenate(best)


def draw_trials(s: PrintSet, scores: np.ndarray, rng: np.random.Generator) -> Trials:
    fingers = len(s.by_finger())
    verify = {n: (*verify_trials(s, scores, n, rng), genuine_trials(s, scores, n, rng)) for n in ENROLLED}
    identify = {k: identify_trials(s, scores, k, 3, 150, rng) for k in GALLERIES if k < fingers}
    return Trials(verify, identify)


def merge_trials(parts: list[Trials]) -> Trials:
    """Trials of several sets of the same fingers (crops with different seeds) as one."""
    def cat(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays)

    verify = {n: (cat([p.verify[n][0] for p in parts]), cat([p.verify[n][1] for p in parts]),
                  cat([p.verify[n][2] for p in parts])) for n in parts[0].verify}
    identify = {g: (cat([p.identify[g][0] for p in parts]), cat([p.identify[g][1] for p in parts]))
                for g in parts[0].identify}
    return Trials(verify, identify)


def score_trials(trials: Trials, fmr_table: ScoreFmr, rng: np.random.Generator | None,
                 **label: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Requested vs measured for every decision of the bench under ``fmr_table`` (rng None: no finger
    bootstrap interval, for the inner folds of the level choice)."""
    verify, identify = [], []
    for n, (best, groups, genuine) in trials.verify.items():
        for fmr in FMRS:
            d = decide(fmr_table, fmr, n)
            verify.append({**label, "enrolled": n, "threshold": d.threshold, "extrapolated": d.extrapolated,
                           **_rate(best >= d.threshold, groups, fmr, rng),
                           "fnmr": float((genuine < d.threshold).mean()), "genuine_trials": int(len(genuine))})
    for k, (best, groups) in trials.identify.items():
        for fpir in FPIRS:
            d = decide(fmr_table, fpir, k * 3)
            identify.append({**label, "gallery_subjects": k, "gallery_templates": k * 3, "threshold": d.threshold,
                             "extrapolated": d.extrapolated, **_rate(best >= d.threshold, groups, fpir, rng)})
    return verify, identify


def holds(rows: list[dict[str, Any]]) -> bool:
    """No decision's measured rate is above its requested one beyond the Clopper-Pearson interval."""
    return all(r["ci95_clopper_pearson"][0] <= r["requested"] for r in rows)


def tail_table(curves: dict[str, np.ndarray], sizes: dict[str, int], names: list[str], level: float) -> ScoreFmr:
    return ScoreFmr(conservative_points({n: curves[n] for n in names}, sizes, level))


def family(population: str) -> str:
    """The database a population comes from ("DB1_B-tiny" -> "DB1_B"): its crops are held out with it."""
    return population.split("-")[0]


def choose_level(names: list[str], curves: dict[str, np.ndarray], sizes: dict[str, int],
                 trials: dict[str, Trials]) -> dict[str, Any]:  # level (float), held, tuned_on, tried
    """Lowest level whose table, fitted on the populations of all families of ``names`` but one, holds every
    decision on the populations of the one left out, for each family in turn; the highest level if none
    does (``held`` false)."""
    families = list(dict.fromkeys(family(n) for n in names))
    tried = []
    for level in LEVELS:
        failed = []
        for out in families:
            table = tail_table(curves, sizes, [n for n in names if family(n) != out], level)
            rows = [r for n in names if family(n) == out for part in score_trials(trials[n], table, None)
                    for r in part]
            if not holds(rows):
                failed.append(out)
        tried.append({"level": level, "failed_on": failed})
        if not failed:
            return {"level": level, "held": True, "tuned_on": names, "tried": tried}
    return {"level": LEVELS[-1], "held": False, "tuned_on": names, "tried": tried}


@dataclass
class Inputs:
    """What the tables are fitted on and checked with. Populations: the full sets and, per family and crop
    kind, the crops of the tuning seeds pooled (``DB1_B-tiny``); ``holdout``: the crops of the hold-out seeds,
    per family and kind, checked only."""

    sets: dict[str, PrintSet]
    scores: dict[str, np.ndarray]
    imps: dict[str, ImpostorScores]
    curves: dict[str, np.ndarray]
    trials: dict[str, Trials]
    holdout: dict[str, Trials] = field(default_factory=dict)

    @property
    def sizes(self) -> dict[str, int]:
        return {n: len(v) for n, v in self.imps.items()}


def fit_inputs(data_dir: Path, cache: Path | None, work: Path | None, seed: int = 0, fit_crops: bool = False
               ) -> Inputs:
    """Score matrices, tail bootstraps and trials of every population. With ``work`` (the folder bench.py
    writes its transformed sets to) the hold-out seeds' crops are checked, and with ``fit_crops`` the tuning
    seeds' crops are populations too."""
    base = data_dir / "fingerprints"
    sets = {n: s for n in SETS if (s := load_set(base, n, cache)) is not None}
    scores = {n: s.score_matrix() for n, s in sets.items()}
    rng = np.random.default_rng(seed)
    imps = {n: ImpostorScores.from_matrix(n, scores[n], s.fingers) for n, s in sets.items()}
    trials = {n: draw_trials(s, scores[n], rng) for n, s in sets.items()}
    holdout: dict[str, Trials] = {}
    splits = ((TUNING_SEEDS, True), (HOLDOUT_SEEDS, False)) if fit_crops else ((HOLDOUT_SEEDS, False),)
    if work is not None:
        for fam, kind, (seeds, tuning) in itertools.product(sets, CROP_KINDS, splits):
            imp, merged = _crops(base, work, fam, kind, seeds, cache, rng)
            if tuning:
                imps[imp.name], trials[imp.name] = imp, merged
            else:
                holdout[imp.name] = merged
    curves = {n: bootstrap_thresholds(v, ROUNDS, np.random.default_rng([seed, k]))
              for k, (n, v) in enumerate(imps.items())}
    return Inputs(sets, scores, imps, curves, trials, holdout)


def _crops(base: Path, work: Path, family: str, kind: str, seeds: tuple[int, ...], cache: Path | None,
           rng: np.random.Generator) -> tuple[ImpostorScores, Trials]:
    """The crops of ``seeds`` as one population (impostor scores pooled over the seeds) and their trials."""
    crops = [c for sd in seeds if (c := load_crops(base, work, family, kind, sd, cache)) is not None]
    mats = [c.score_matrix() for c in crops]
    pooled = ImpostorScores.pooled(f"{family}-{kind}", [ImpostorScores.from_matrix(c.name, m, c.fingers)
                                                        for c, m in zip(crops, mats, strict=True)])
    return pooled, merge_trials([draw_trials(c, m, rng) for c, m in zip(crops, mats, strict=True)])


def pooled_identify(sets: dict[str, PrintSet], rng: np.random.Generator) -> list[dict[str, Any]]:
    """Larger galleries from the three sets together (the shipped table, fitted on all of them: flagged)."""
    pool = PrintSet("pooled", [f"{n}:{f}" for n, s in sets.items() for f in s.fingers],
                    [t for s in sets.values() for t in s.templates], [f for s in sets.values() for f in s.fields])
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


def run(data_dir: Path, cache: Path | None, seed: int = 0, work: Path | None = None, fit_crops: bool = False
        ) -> dict[str, Any]:
    fit = fit_inputs(data_dir, cache, work, seed, fit_crops)
    sets, scores, imps, curves, trials, sizes = fit.sets, fit.scores, fit.imps, fit.curves, fit.trials, fit.sizes
    rng = np.random.default_rng([seed, 1])
    pops = list(imps)
    report: dict[str, Any] = {"sets": {}, "crops": {}, "method": __doc__.split("\n\n")[1].replace("\n", " "),
                              "levels": list(LEVELS), "bootstrap_rounds": ROUNDS, "populations": pops,
                              "holdout_seeds": list(HOLDOUT_SEEDS)}
    for name, s in sets.items():
        others = [n for n in pops if family(n) != name]
        out: dict[str, Any] = {"prints": len(s.templates), "fingers": len(s.by_finger()), "verify": [],
                               "identify": []}
        if others:
            choice: dict[str, Any] = choose_level(others, curves, sizes, trials) if len(set(map(family, others))) > 1 \
                else {"level": LEVELS[-1], "held": False, "tuned_on": [], "tried": []}
            out["level"] = choice
            fitted = "+".join(others)
            tables = [(tail_table(curves, sizes, others, choice["level"]),
                       {"table": f"tail bound {choice['level']:g}, fitted on {fitted}", "method": "tail",
                        "table_fitted_on": others, "level_tuned_on": choice["tuned_on"],
                        "table_fitted_on_this_set": False}),
                      (ScoreFmr(score_fmr_points(np.concatenate([imps[o].sample() for o in others]), TABLE_GRID)),
                       {"table": f"empirical, fitted on {fitted} (previous method)", "method": "empirical",
                        "table_fitted_on": others, "level_tuned_on": [], "table_fitted_on_this_set": False})]
        else:
            tables = []
        tables.append((shipped(), {"table": "shipped (all sets)", "method": "shipped",
                                   "table_fitted_on": list(SETS), "level_tuned_on": list(SETS),
                                   "table_fitted_on_this_set": True}))
        if table_path("leader", "small-area").is_file():
            small = shipped_table("leader", "small-area")
            tables.append((shipped("leader", "small-area"),
                           {"table": "shipped small-area (all sets and their tuning seeds' crops)",
                            "method": "shipped-small-area", "table_fitted_on": small["level_tuned_on"],
                            "level_tuned_on": small["level_tuned_on"], "table_fitted_on_this_set": True}))
        for table, label in tables:
            v, i = score_trials(trials[name], table, rng, **label)
            out["verify"] += v
            out["identify"] += i
            for pop, held in fit.holdout.items():
                if family(pop) == name and label["method"] != "empirical":
                    # the shipped table saw the impressions these crops were cut from, never these crops
                    lab = {**label, "table_fitted_on_this_set": False}
                    v, i = score_trials(held, table, rng, **lab)
                    entry = report["crops"].setdefault(pop, {"verify": [], "identify": []})
                    entry["verify"] += v
                    entry["identify"] += i
        out["dependence"] = dependence(s, scores[name], rng)
        report["sets"][name] = out
    if len(sets) > 1:
        report["pooled_identify"] = pooled_identify(sets, rng)
        report["shipped_level"] = choose_level(pops, curves, sizes, trials)
    report["large_galleries"] = [{"templates": t, "fpir": f, "per_comparison_fmr": d.per_comparison_fmr,
                                  "threshold": d.threshold, "extrapolated": d.extrapolated}
                                 for t in (100, 1000, 10_000, 100_000) for f in (0.01,)
                                 for d in (decide(shipped(), f, t),)]
    return report


def shipped_table_points(data_dir: Path, cache: Path | None, work: Path | None = None, seed: int = 0
                         ) -> dict[str, Any]:
    """The table ``bio-fingerprint calibrate`` ships: the tail model fitted on every population (the full sets,
    and with ``work`` the tuning seeds' crops), at the level chosen leaving one family out (each family's
    populations checked with the table of the others)."""
    fit = fit_inputs(data_dir, cache, work, seed, fit_crops=work is not None)
    names = list(fit.imps)
    choice: dict[str, Any] = choose_level(names, fit.curves, fit.sizes, fit.trials) if len(fit.sets) > 1 else \
        {"level": LEVELS[-1], "held": False, "tuned_on": [], "tried": []}
    return {"points": conservative_points(fit.curves, fit.sizes, choice["level"]), "level": choice,
            "impostor_comparisons": fit.sizes, "fingers": {n: v.fingers for n, v in fit.imps.items()}}


def markdown(report: dict[str, Any]) -> str:
    held = "holds: not above the requested rate beyond the Clopper-Pearson interval"
    lines = ["# Subject-level decisions: requested vs measured", "", report["method"], "",
             "## Level of the tail bound, chosen per held-out set on the other sets only", "",
             "| held-out set | level | chosen on | held in the inner folds | levels tried (inner folds failed) |",
             "|---|---:|---|---|---|"]
    for name, r in report["sets"].items():
        if "level" in r:
            c = r["level"]
            tried = "; ".join(f"{t['level']:g}: {'+'.join(t['failed_on']) or '-'}" for t in c["tried"])
            lines.append(f"| {name} | {c['level']:g} | {'+'.join(c['tuned_on'])} | {c['held']} | {tried} |")
    if report.get("shipped_level"):
        c = report["shipped_level"]
        lines.append(f"| (shipped table: every set in turn) | {c['level']:g} | {'+'.join(c['tuned_on'])} | "
                     f"{c['held']} | " + "; ".join(f"{t['level']:g}: {'+'.join(t['failed_on']) or '-'}"
                                                   for t in c["tried"]) + " |")
    lines += ["", "## Verify against a subject (best of N enrolled impressions)", "", f"({held}; FNMR: genuine "
              "best-of-N scores under the threshold)", "",
              "| set | table | N | requested FMR | measured | 95% CI (Clopper-Pearson) | 95% CI (finger bootstrap) | "
              "false / trials | holds | threshold | FNMR |", "|---|---|---:|---:|---:|---|---|---:|---|---:|---:|"]
    for name, r in report["sets"].items():
        for v in r["verify"]:
            lines.append(_row(name, v, str(v["enrolled"])) + f" {v['threshold']:.2f} | {v['fnmr']:.4f} |")
    lines += ["", "## Identify (FPIR over galleries; 3 templates per subject)", "",
              "| set | table | subjects / templates | requested FPIR | measured | 95% CI (Clopper-Pearson) | "
              "95% CI (finger bootstrap) | false / searches | holds | threshold |",
              "|---|---|---:|---:|---:|---|---|---:|---|---:|"]
    for name, r in report["sets"].items():
        for v in r["identify"]:
            lines.append(_row(name, v, f"{v['gallery_subjects']} / {v['gallery_templates']}") +
                         f" {v['threshold']:.2f} |")
    lines += _crop_lines(report.get("crops", {}), report.get("holdout_seeds", []))
    if report.get("pooled_identify"):
        lines += ["", "Pooled galleries (all three sets, probes of fingers left out; cross-sensor impostors included):", ""]
        lines += [_row("pooled", v, f"{v['gallery_subjects']} / {v['gallery_templates']}") + f" {v['threshold']:.2f} |"
                  for v in report["pooled_identify"]]
    if report.get("large_galleries"):
        lines += ["", "## Shipped thresholds for larger galleries (per-comparison rates below the table: extrapolated)",
                  "", "| templates searched | FPIR | per-comparison rate | threshold | extrapolated |",
                  "|---:|---:|---:|---:|---|"]
        lines += [f"| {g['templates']} | {g['fpir']:g} | {g['per_comparison_fmr']:.2e} | {g['threshold']:.2f} | "
                  f"{g['extrapolated']} |" for g in report["large_galleries"]]
    lines += ["", "## Dependence of best-of-N impostor scores (in-sample)", "",
              "| set | N | single-comparison FMR | independence predicts | measured |", "|---|---:|---:|---:|---:|"]
    for name, r in report["sets"].items():
        for d in r["dependence"]:
            lines.append(f"| {name} | {d['enrolled']} | {d['single_fmr']:.4f} | {d['independent_prediction']:.4f} | "
                         f"{d['measured']:.4f} |")
    return "\n".join(lines) + "\n"


def _crop_lines(crops: dict[str, Any], seeds: list[int]) -> list[str]:
    if not crops:
        return []
    lines = ["", "## Small and tiny crops of the hold-out seeds (never fitted on)", "",
             "Per family and crop kind, the crops of seeds " + ", ".join(map(str, seeds)) + " pooled "
             "(bench.py's development sets). The fold's table never saw the family; the shipped ones were fitted on "
             "the full impressions the crops were cut from (small-area: and on the tuning seeds' crops), never on "
             "these crops.", "",
             "| crops | table | N / gallery | requested | measured | 95% CI (Clopper-Pearson) | 95% CI (finger "
             "bootstrap) | false / trials | holds | threshold | FNMR |", "|---|---|---:|---:|---:|---|---|---:|---|---:|---:|"]
    for name, r in crops.items():
        for v in r["verify"]:
            lines.append(_row(name, v, f"N {v['enrolled']}") + f" {v['threshold']:.2f} | {v['fnmr']:.4f} |")
        for v in r["identify"]:
            lines.append(_row(name, v, f"{v['gallery_subjects']} / {v['gallery_templates']}") +
                         f" {v['threshold']:.2f} | |")
    return lines


def _row(name: str, v: dict[str, Any], size: str) -> str:
    lo, hi = v["ci95_clopper_pearson"]
    blo, bhi = v["ci95_finger_bootstrap"]
    flag = " (fitted on this set)" if v["table_fitted_on_this_set"] else ""
    return (f"| {name} | {v['table']}{flag} | {size} | {v['requested']:g} | {v['measured']:.4f} | "
            f"{lo:.4f}-{hi:.4f} | {blo:.4f}-{bhi:.4f} | {v['false']} / {v['trials']} | "
            f"{'yes' if v['at_most_requested'] else '**no**'} |")


def main(args: argparse.Namespace, settings: Any) -> None:
    import os

    from bio_shared.inference import configure_torch

    configure_torch()
    data = Path(os.environ.get("BIOMETRICS_DATA_DIR") or getattr(settings, "data_dir", None) or "../shared/data")
    report = run(data, Path(args.cache) if args.cache else None, args.seed, Path(args.work) if args.work else None,
                 args.fit_crops)
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
    p.add_argument("--work", default="var/fingerprint-devsets",
                   help="folder for the small / tiny crops (bench.py's development sets), whose hold-out seeds "
                        "are checked; '' leaves them out")
    p.add_argument("--fit-crops", action="store_true",
                   help="fit the tables on the tuning seeds' crops too (as calibrate --work does)")
    p.set_defaults(handler=main)
