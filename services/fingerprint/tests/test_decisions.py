"""Decisions over several comparisons hold the requested rate: best-of-N subject verification and
identification at a false-positive identification rate (FPIR) for the gallery size."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bio_fingerprint.engine.decision import ScoreFmr, decide, decision_rate, per_comparison_rate, shipped
from bio_fingerprint.engine.evaluation import score_fmr_points

P = "/api/v1/fingerprint"
DB1 = "fvc2002/DB1_B"


def test_per_comparison_rate_inverts_the_best_of_n_rate():
    for rate in (0.1, 0.01, 0.001, 1e-6):
        for n in (1, 3, 10, 10_000):
            single = per_comparison_rate(rate, n)
            assert decision_rate(single, n) == pytest.approx(rate, rel=1e-9)
            assert rate / n <= single * (1 + 1e-12) and single <= rate / n * (1 + rate)  # Sidak >= Bonferroni
    with pytest.raises(ValueError):
        per_comparison_rate(0, 3)


def test_thresholds_rise_with_the_number_of_comparisons_and_extrapolate_below_the_table():
    table = shipped()
    thresholds = [decide(table, 0.001, n).threshold for n in (1, 2, 3, 10, 100, 10_000)]
    assert thresholds == sorted(thresholds) and len(set(thresholds)) == len(thresholds)
    d = decide(table, 0.001, 10_000)
    assert d.extrapolated and d.threshold > table.threshold_for(table.lowest_fmr)
    assert not decide(table, 0.001, 3).extrapolated
    assert table.fmr_of(decide(table, 0.01, 1).threshold) == pytest.approx(0.01, rel=0.02)


def test_best_of_n_decision_holds_its_rate_on_independent_impostor_scores():
    """Table fitted on one sample of single impostor scores; decisions checked on best-of-N of another."""
    rng = np.random.default_rng(1)
    fit = rng.gamma(2.0, 0.6, 400_000)
    table = ScoreFmr(score_fmr_points(fit, (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003, 0.0001, 0.00003)))
    for n, rate in ((3, 0.01), (5, 0.01), (10, 0.03)):
        best = rng.gamma(2.0, 0.6, (200_000, n)).max(axis=1)
        measured = float((best >= decide(table, rate, n).threshold).mean())
        sigma = math.sqrt(rate * (1 - rate) / len(best))
        assert abs(measured - rate) < 4 * sigma + 0.08 * rate, (n, rate, measured)
        # the uncorrected single-comparison threshold would give about n times the rate
        naive = float((best >= table.threshold_for(rate)).mean())
        assert naive > 0.8 * n * rate * (1 - (n - 1) * rate)


def _file(fp_root: Path, rel: str) -> tuple[str, bytes, str]:
    return (Path(rel).name, (fp_root / rel).read_bytes(), "image/tiff")


def test_another_finger_does_not_match_a_subject_with_three_impressions(start, fp_root):
    """The reproduction of issue 11: enroll finger 1 of A from 101_1..101_3 of DB1_B, verify 103_5 at
    fmr=0.001 -> no match (the single-comparison threshold accepted it: 4.85 over 4.35)."""
    svc = start()
    files = [("files", _file(fp_root, f"{DB1}/101_{i}.tif")) for i in (1, 2, 3)]
    r = svc.client.post(f"{P}/enroll", files=files, data={"subject": "A", "finger": "1"}, headers=svc.auth())
    assert r.status_code == 201 and r.json()["enrolled"] == 3, r.text
    v = svc.client.post(f"{P}/verify", files={"file": _file(fp_root, f"{DB1}/103_5.tif")},
                        data={"subject": "A", "fmr": "0.001"}, headers=svc.auth())
    assert v.status_code == 200, v.text
    body = v.json()
    assert body["match"] is False and body["score"] < body["threshold"], body
    assert body["decision"] == "subject" and body["compared"] == 3 and body["fmr"] == 0.001
    assert body["per_comparison_fmr"] == pytest.approx(1 - 0.999 ** (1 / 3), rel=1e-6)
    assert body["threshold"] > shipped().threshold_for(0.001)
    assert body["estimated_decision_fmr"] >= body["estimated_fmr"]
    # the same subject's own finger still matches, and one template is a single-comparison decision
    genuine = svc.client.post(f"{P}/verify", files={"file": _file(fp_root, f"{DB1}/101_5.tif")},
                              data={"subject": "A", "fmr": "0.001"}, headers=svc.auth()).json()
    assert genuine["match"] is True
    tid = r.json()["items"][0]["template"]["id"]
    one = svc.client.post(f"{P}/verify", files={"file": _file(fp_root, f"{DB1}/101_5.tif")},
                          data={"template_id": tid, "fmr": "0.001"}, headers=svc.auth()).json()
    assert one["decision"] == "template" and one["compared"] == 1
    assert one["threshold"] == pytest.approx(shipped().threshold_for(0.001), abs=1e-3)

    # identify: the FPIR threshold accounts for the gallery size and is returned with the candidates
    ident = svc.client.post(f"{P}/identify", files={"file": _file(fp_root, f"{DB1}/101_6.tif")},
                            data={"fpir": "0.001"}, headers=svc.auth()).json()
    assert ident["fpir"] == 0.001 and ident["gallery"] == {"subjects": 1, "templates": 3}
    assert ident["threshold"] == pytest.approx(decide(shipped(), 0.001, 3).threshold, abs=1e-3)
    assert [c["subject"] for c in ident["candidates"]] == ["A"]
    stranger = svc.client.post(f"{P}/identify", files={"file": _file(fp_root, f"{DB1}/103_5.tif")},
                               data={"fpir": "0.001"}, headers=svc.auth()).json()
    assert stranger["candidates"] == []
    bad = svc.client.post(f"{P}/identify", files={"file": _file(fp_root, f"{DB1}/103_5.tif")},
                          data={"fpir": "1.5"}, headers=svc.auth())
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_fmr"
