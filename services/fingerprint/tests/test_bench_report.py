"""The benchmark's development-set bookkeeping: which sets a setting was chosen on, and how it is reported."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bio_fingerprint import bench
from bio_fingerprint.bench_report import ci, clean, pct, write_report


def _res(eer: float) -> dict:
    m = {"eer": eer, "fmr100": eer, "fmr1000": 2 * eer, "zero_fmr": 2 * eer}
    return {"fvc": m, "all_pairs": m, "extraction_ms": {"p50": 120.0}, "comparisons_per_s": 30000.0,
            "comparisons_per_cpu_s": 31000.0, "comparisons_per_s_python_calls": 25000.0, "minutiae_mean": 22.5}


def test_every_set_says_whether_a_setting_was_chosen_on_it():
    by = {s.name: s for s in bench.DEV_SETS}
    assert {"DB1_B", "DB2_B", "pyfnprint"} <= set(by)
    for src in ("DB1_B", "DB2_B", "pyfnprint"):
        for kind in ("small", "tiny", "distorted"):
            s = by[f"{src}-{kind}"]
            # the common-area floor (seed-1 small / tiny) and LEADER's threshold (also full and distorted)
            # were chosen on these
            assert s.source == src and s.kind == kind and s.tuned_on and s.note
    assert by["DB1_B"].tuned_on and by["DB2_B"].tuned_on and by["pyfnprint"].tuned_on
    others = [s for s in bench.DEV_SETS if s.seed != 1]
    assert len(others) == 30
    assert all(s.tuned_on == (s.seed in bench.TUNING_SEEDS) and s.note for s in others)
    assert {s.seed for s in others if not s.tuned_on} == set(bench.HOLDOUT_SEEDS)


def test_report_lists_the_tuned_on_flag_command_and_rates(tmp_path):
    report = {"environment": "test", "sets": {
        "DB1_B": {"tuned_on": True, "note": "legacy", "command": "bio-fingerprint bench --sets DB1_B",
                  "det_plot": "x.svg", "ours_leader": _res(0.002), "nbis": None},
        "DB1_B-tiny": {"tuned_on": False, "note": "held out", "command": "bio-fingerprint evaluate /d --json o",
                       "det_plot": "y.svg", "ours_leader": _res(0.01), "nbis": None,
                       "common_area": {"genuine_pairs": 280, "aligned": 279, "median_fraction": 0.69,
                                       "under_low_fraction": 4, "fnmr_floor": 4 / 280,
                                       "all_pairs_eer_where_shared": 0.0078}}}}
    out = tmp_path / "fp"
    write_report(out, report)
    md = out.with_suffix(".md").read_text()
    assert "| DB1_B | yes | ours, leader minutiae | 0.20% |" in md
    assert "| DB1_B-tiny | no | ours, leader minutiae | 1.00% |" in md and "| 31000 |" in md
    assert "`bio-fingerprint evaluate /d --json o`" in md
    assert "| DB1_B-tiny | 280 | 279 | 0.69 | 4 | 1.43% | 0.78% |" in md
    stored = json.loads(out.with_suffix(".json").read_text())
    assert stored["sets"]["DB1_B-tiny"]["ours_leader"]["all_pairs"]["fmr1000"] == 0.02


def test_report_json_is_strict_json_where_a_metric_has_no_comparisons():
    # a set without genuine pairs (one impression per finger) has NaN metrics: null in the JSON, '-' in tables
    res = clean({"fvc": {"eer": float("nan"), "eer_ci95": [float("nan"), float("nan")]}, "t": np.float64(np.inf),
                 "ok": np.float32(0.25)})
    assert res == {"fvc": {"eer": None, "eer_ci95": [None, None]}, "t": None, "ok": 0.25}
    json.loads(json.dumps(res), parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert pct(res["fvc"]["eer"]) == "-" and ci(res["fvc"]) == ""
