"""bench-threshold: a higher LEADER threshold is the lower one's template filtered by confidence, and each
fold chooses on the other families' tuning sets only."""

import numpy as np

from bio_fingerprint.bench_threshold import choose, keep, roles, ship_choice


def test_keep_drops_minutiae_under_the_threshold():
    t = np.array([[1, 1, 0, 1, 95], [2, 2, 0, 1, 40], [3, 3, 0, 2, 20], [4, 4, 0, 2, 12]], np.float32)
    assert len(keep(t, 0.6)) == 1
    assert len(keep(t, 0.2)) == 3
    assert len(keep(t, 0.1)) == 4


def _e(v):
    return {"fvc_eer": v, "all_eer": v, "fmr1000": v}


def test_fold_ignores_the_held_out_family():
    sets = [f"{fam}-{kind}{seed}" for fam in ("DB1_B", "DB2_B", "pyfnprint") for kind in ("small", "tiny")
            for seed in ("", "-seed2")]
    r = roles(sets)
    assert r["DB1_B-tiny"]["role"] == "tuning" and r["DB1_B-tiny-seed2"]["role"] == "holdout"

    # DB1_B alone prefers 0.2, by far; the other two families prefer 0.6, each set by a little
    results = {"0.6@1": {s: _e(0.05 if s.startswith("DB1_B") else 0.01) for s in sets},
               "0.2@1": {s: _e(0.01 if s.startswith("DB1_B") else 0.012) for s in sets}}
    folds = {f["held_out"]: f for f in choose(results, r, "0.2@1")}
    assert folds["DB1_B"]["chosen"] == "0.6@1"  # chosen without DB1_B, so DB1_B's preference does not count
    assert folds["DB1_B"]["holdout_at_chosen"]["all_eer"] == 0.05
    assert folds["DB1_B"]["holdout_at_shipped"]["all_eer"] == 0.01
    # the other folds see DB1_B gain much more (0.04 per set) than the third family loses (0.002)
    assert folds["DB2_B"]["chosen"] == "0.2@1" and folds["pyfnprint"]["chosen"] == "0.2@1"


def test_one_standard_error_rule():
    sets = ["DB1_B-small", "DB1_B-tiny", "DB2_B-small", "DB2_B-tiny", "pyfnprint-small", "pyfnprint-tiny"]
    r = roles(sets)
    base = dict(zip(sets, (0.02, 0.03, 0.01, 0.02, 0.01, 0.015), strict=True))
    # 0.2 is better on every set by the same margin: a consistent gain is taken
    results = {"0.6@1": {s: _e(v) for s, v in base.items()}, "0.2@1": {s: _e(v - 0.005) for s, v in base.items()}}
    assert ship_choice(results, r)["chosen"] == "0.2@1"
    # 0.2 better on the mean but worse on half the sets: within one standard error, 0.6 stays
    results["0.2@1"] = {s: _e(v - (0.012 if i % 2 else -0.008)) for i, (s, v) in enumerate(base.items())}
    assert ship_choice(results, r)["tuning_objective"]["0.2@1"] < ship_choice(results, r)["tuning_objective"]["0.6@1"]
    assert ship_choice(results, r)["chosen"] == "0.6@1"


def test_shipped_rule_uses_every_familys_tuning_sets_and_no_hold_out():
    sets = ["DB1_B-tiny", "DB1_B-tiny-seed2", "DB2_B-tiny", "pyfnprint-tiny"]
    r = roles(sets)

    def cell(db1, hold, db2, py):
        return {"DB1_B-tiny": _e(db1), "DB1_B-tiny-seed2": _e(hold), "DB2_B-tiny": _e(db2), "pyfnprint-tiny": _e(py)}

    # the hold-out set alone would prefer 0.6 by far; every tuning set prefers 0.2 at weight 0.5
    results = {"0.6@1": cell(0.05, 0.0, 0.03, 0.03), "0.2@1": cell(0.03, 0.9, 0.02, 0.02),
               "0.2@0.5": cell(0.02, 0.9, 0.01, 0.01)}
    ship = ship_choice(results, r)
    assert ship["chosen"] == "0.2@0.5" and "DB1_B-tiny-seed2" not in ship["tuning_sets"]
    # ties go to the more certain threshold, then to the fuller weight
    results = {"0.6@1": cell(0.03, 0, 0.02, 0.02), "0.2@1": cell(0.03, 0, 0.02, 0.02), "0.2@0.5": cell(0.03, 0, 0.02, 0.02)}
    assert ship_choice(results, r)["chosen"] == "0.6@1"
    del results["0.6@1"]
    assert ship_choice(results, r)["chosen"] == "0.2@1"
