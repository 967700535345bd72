"""bench-threshold: a higher LEADER threshold is the lower one's template filtered by confidence, and each
fold chooses on the other families' tuning sets only."""

import numpy as np

from bio_fingerprint.bench_threshold import choose, keep, roles


def test_keep_drops_minutiae_under_the_threshold():
    t = np.array([[1, 1, 0, 1, 95], [2, 2, 0, 1, 40], [3, 3, 0, 2, 20], [4, 4, 0, 2, 12]], np.float32)
    assert len(keep(t, 0.6)) == 1
    assert len(keep(t, 0.2)) == 3
    assert len(keep(t, 0.1)) == 4


def test_fold_ignores_the_held_out_family():
    sets = ["DB1_B-tiny", "DB1_B-tiny-seed2", "DB2_B-tiny", "DB2_B-tiny-seed2", "pyfnprint-tiny", "pyfnprint-tiny-seed2"]
    r = roles(sets)
    assert r["DB1_B-tiny"]["role"] == "tuning" and r["DB1_B-tiny-seed2"]["role"] == "holdout"

    def e(v):
        return {"fvc_eer": v, "all_eer": v, "fmr1000": v}

    # DB1_B alone prefers 0.2; the other two families prefer 0.6
    results = {"0.6": {s: e(0.05 if s.startswith("DB1_B") else 0.01) for s in sets},
               "0.2": {s: e(0.01 if s.startswith("DB1_B") else 0.03) for s in sets}}
    folds = {f["held_out"]: f for f in choose(results, r, 0.2)}
    assert folds["DB1_B"]["chosen"] == 0.6  # chosen without DB1_B, so DB1_B's preference does not count
    # the other folds see DB1_B gain more (0.04) than the third family loses (0.02)
    assert folds["DB2_B"]["chosen"] == 0.2 and folds["pyfnprint"]["chosen"] == 0.2
    assert folds["DB1_B"]["holdout_at_chosen"]["all_eer"] == 0.05
    assert folds["DB1_B"]["holdout_at_shipped"]["all_eer"] == 0.01
