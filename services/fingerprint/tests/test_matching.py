"""Enhancement, minutiae, quality, templates and matching on real prints (FVC2002, SourceAFIS samples)."""

from __future__ import annotations

import json
import math
from importlib import resources

import numpy as np
import pytest

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.pipeline import process
from bio_fingerprint.engine.template import Template, TemplateFormatError
from bio_fingerprint.service import fmr_of, threshold_for
from bio_shared.errors import BadRequest

DB1 = "fvc2002/DB1_B"


def test_enhancement_and_extraction_are_deterministic(gray_of, extracted):
    first = extracted(f"{DB1}/101_1.tif")
    again = process(gray_of(f"{DB1}/101_1.tif"))
    assert np.array_equal(first.enhanced.enhanced, again.enhanced.enhanced)
    assert np.array_equal(first.enhanced.skeleton, again.enhanced.skeleton)
    assert np.array_equal(first.minutiae, again.minutiae)
    assert first.quality.to_dict() == again.quality.to_dict()


def test_ridge_enhancement_produces_all_stages(extracted):
    e = extracted(f"{DB1}/102_1.tif").enhanced
    inside = e.mask > 0
    assert 0.3 < inside.mean() < 0.95  # the print, not the background
    assert e.orientation.shape == e.gray.shape and float(e.orientation[inside].min()) >= -0.01
    assert 6 < float(np.median(e.period[inside])) < 13  # 500 dpi ridge period, about 9 px
    assert set(np.unique(e.binary)) == {0, 1} and set(np.unique(e.skeleton)) == {0, 1}
    assert e.skeleton.sum() < e.binary.sum() / 2  # thinned to one-pixel lines
    assert (e.enhanced[~inside] == 255).all()  # background white, ridges dark


@pytest.mark.parametrize("extractor", ["leader", "classic"])
def test_minutiae_have_position_direction_type_quality(extracted, extractor):
    p = extracted(f"{DB1}/103_1.tif", extractor)
    m = p.minutiae
    assert m.shape[1] == 5 and 15 <= len(m) <= 120
    h, w = p.enhanced.gray.shape
    assert (m[:, 0] >= 0).all() and (m[:, 0] < w).all() and (m[:, 1] >= 0).all() and (m[:, 1] < h).all()
    assert (m[:, 2] >= 0).all() and (m[:, 2] < 2 * math.pi).all()
    assert set(np.unique(m[:, 3])) <= {0, 1, 2} and {1, 2} <= set(np.unique(m[:, 3]))
    assert (m[:, 4] >= 1).all() and (m[:, 4] <= 100).all()
    # spurious minutiae removed: none on the print border (outside the mask)
    assert (p.enhanced.mask[m[:, 1].astype(int), m[:, 0].astype(int)] > 0).all()


def test_classic_extractor_removes_clustered_minutiae(extracted):
    m = extracted(f"{DB1}/104_1.tif", "classic").minutiae
    d = np.hypot(m[:, None, 0] - m[None, :, 0], m[:, None, 1] - m[None, :, 1])
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 5  # bridges, holes and spurs (pairs closer than half a ridge period) are gone


def test_quality_score_with_reasons(extracted, gray_of):
    good = extracted(f"{DB1}/105_1.tif").quality
    assert good.score >= 60 and good.reasons == []
    assert set(good.components) >= {"foreground", "clarity", "minutiae"}
    blank = process(np.full((300, 300), 230, np.uint8)).quality
    assert blank.score <= 10 and any("area" in r for r in blank.reasons)
    half = gray_of(f"{DB1}/105_1.tif").copy()
    half[:, : half.shape[1] * 3 // 4] = 255  # three quarters of the print missing
    partial = process(half).quality
    assert partial.score < good.score and any("area" in r for r in partial.reasons)


def test_face_photo_is_not_a_fingerprint(data_dir):
    from bio_shared.images import decode_image

    face = decode_image((data_dir / "faces" / "openface" / "clapton-1.jpg").read_bytes(), mode="gray").pixels
    q = process(face).quality
    assert q.score <= 10 and q.components["is_fingerprint"] is False
    assert any("ridge pattern" in r for r in q.reasons)


def _score(extracted, a: str, b: str) -> float:
    pa, pb = extracted(a), extracted(b)
    return matcher.score(pa.minutiae, pb.minutiae, pa.orientation, pb.orientation)


def test_same_finger_matches_above_the_threshold_and_other_fingers_below(extracted):
    thr = threshold_for(0.001)
    fingers = [f"{DB1}/{f}" for f in (101, 102, 103, 104, 105, 106)]
    genuine = [_score(extracted, f"{f}_1.tif", f"{f}_2.tif") for f in fingers]
    impostor = [_score(extracted, f"{a}_1.tif", f"{b}_1.tif") for i, a in enumerate(fingers) for b in fingers[i + 1:]]
    assert sum(g >= thr for g in genuine) >= 5, (genuine, thr)
    assert max(impostor) < thr, (impostor, thr)
    assert min(genuine) > max(impostor) * 0.5


def test_scores_are_symmetric_enough_and_self_match_is_highest(extracted):
    a, b = extracted(f"{DB1}/101_1.tif").minutiae, extracted(f"{DB1}/101_3.tif").minutiae
    assert matcher.score(a, a) > matcher.score(a, b)
    s1, s2 = matcher.score(a, b), matcher.score(b, a)
    assert abs(s1 - s2) <= 0.25 * max(s1, s2)


def _fmr_table() -> dict:
    return json.loads((resources.files("bio_fingerprint") / "weights" / "score_fmr_leader.json").read_text())


def _turned(m, angle_deg, shift):
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    moved = m.copy()
    moved[:, 0] = c * m[:, 0] - s * m[:, 1] + shift[0] + 300
    moved[:, 1] = s * m[:, 0] + c * m[:, 1] + shift[1] + 300
    moved[:, 2] = (m[:, 2] + a) % (2 * math.pi)
    return moved


@pytest.mark.parametrize("angle_deg,shift", [(0, (0, 0)), (35, (40, -25)), (-80, (-60, 80)), (60, (15, 15))])
def test_matcher_is_rotation_and_translation_invariant(extracted, angle_deg, shift):
    m = extracted(f"{DB1}/106_1.tif").minutiae
    assert matcher.score(m, _turned(m, angle_deg, shift)) == pytest.approx(matcher.score(m, m), rel=0.02)


@pytest.mark.parametrize("angle_deg", [-120, 180])
def test_prints_turned_beyond_the_mcc_prior_still_match(extracted, angle_deg):
    """The cylinder part assumes prints turned by less than 90 deg (as MCC does); beyond, the neighbour part
    alone still matches a print with itself far above the strictest threshold."""
    m = extracted(f"{DB1}/106_1.tif").minutiae
    turned = matcher.score(m, _turned(m, angle_deg, (10, 10)))
    assert 0.2 * matcher.score(m, m) <= turned < matcher.score(m, m)
    assert turned > max(p["threshold"] for p in _fmr_table()["points"])


def test_vectorised_neighbour_check_agrees_with_the_scalar_one(extracted):
    """The seed block's branch-free pre-check must pass exactly the pairs the scalar check passes."""
    a = matcher.prepare(extracted(f"{DB1}/101_1.tif").minutiae)
    b = matcher.prepare(extracted(f"{DB1}/101_2.tif").minutiae)
    c = matcher.prepare(extracted(f"{DB1}/104_1.tif").minutiae)
    for la, lb in ((a[1], b[1]), (a[1], c[1]), (c[1], b[1])):
        ra, rb = min(len(la), matcher.SEED_ROWS), min(len(lb), matcher.SEED_ROWS)
        block = matcher._plausible_block(la, ra, lb, rb)
        scalar = np.array([[matcher._plausible(la, i, lb, p) for p in range(rb)] for i in range(ra)])
        assert block.any() and np.array_equal(block, scalar), (block != scalar).sum()


def _reference_pair_similarity(la: np.ndarray, i: int, lb: np.ndarray, p: int) -> float:
    """The local similarity as its docstring states it, in plain Python: A's neighbours, nearest first,
    each take B's unused neighbour of lowest cost within all three tolerances (the first on a tie)."""
    na = int((la[i, 0, :matcher.K] >= 0).sum())
    nb = int((lb[p, 0, :matcher.K] >= 0).sum())
    if min(na, nb) < 3:
        return 0.0
    used: set[int] = set()
    acc = 0.0
    for a in range(na):
        da = float(la[i, 0, a])
        tol = np.float32(6.0) + np.float32(0.12) * np.float32(da)
        best, best_cost = -1, 3.0
        for b in range(nb):
            dd = abs(da - float(lb[p, 0, b]))
            e1 = abs(float(la[i, 1, a]) - float(lb[p, 1, b]))
            e1 = min(e1, 2 * math.pi - e1)
            e2 = abs(float(la[i, 2, a]) - float(lb[p, 2, b]))
            e2 = min(e2, 2 * math.pi - e2)
            if b in used or not (dd <= tol and e1 <= 0.4 and e2 <= 0.5):
                continue
            c = dd / tol + 2.5 * e1 + 2.0 * e2
            if c < best_cost:  # the strictly lowest: the first on a tie
                best, best_cost = b, c
        if best >= 0:
            used.add(best)
            acc += 1.0 - best_cost / 3.0
    return acc / min(na, nb)


def test_vectorised_local_similarity_agrees_with_the_plain_rule(extracted):
    """_pair_similarity runs its lane loops as vector code and its greedy assignment as a minimum of integer
    keys: it must give the plain rule's value on every pair (same finger and other fingers)."""
    from bio_fingerprint.engine.local_structures import _pair_similarity

    a = matcher.prepare(extracted(f"{DB1}/101_1.tif").minutiae)[1]
    b = matcher.prepare(extracted(f"{DB1}/101_2.tif").minutiae)[1]
    c = matcher.prepare(extracted(f"{DB1}/104_1.tif").minutiae)[1]
    cost = np.empty((matcher.K, matcher.KP), np.float32)
    nonzero = 0
    for la, lb in ((a, b), (a, c), (c, b)):
        for i in range(len(la)):
            for p in range(len(lb)):
                got = _pair_similarity(la, i, lb, p, cost)
                assert got == pytest.approx(_reference_pair_similarity(la, i, lb, p), abs=1e-5), (i, p)
                nonzero += got > 0
    assert nonzero > 100


def test_batch_scoring_equals_one_call_per_pair(extracted):
    names = [f"{DB1}/{f}_{i}.tif" for f in (101, 102, 103) for i in (1, 2)]
    templates = [extracted(n).minutiae for n in names]
    pairs = [(a, b) for a in range(len(names)) for b in range(len(names)) if a != b]
    batch = matcher.score_pairs(matcher.pack(templates), pairs)
    single = [matcher.score(templates[a], templates[b]) for a, b in pairs]
    assert np.allclose(batch, single, rtol=0, atol=1e-9)
    assert batch[pairs.index((0, 1))] > 5 * batch[pairs.index((0, 2))]  # same finger far above another


def test_large_offsets_and_empty_templates(extracted):
    """The pairing grid spans A's extent: B placed 5,000 px away still aligns onto it and pairs fully."""
    m = extracted(f"{DB1}/106_1.tif").minutiae
    far = m.copy()
    far[:, 0] += 5000
    far[:, 1] -= 3000
    assert matcher.score(m, far) == pytest.approx(matcher.score(m, m), rel=0.02)
    empty = np.zeros((0, 5), np.float32)
    assert matcher.score(m, empty) == 0.0 and matcher.score(empty, m) == 0.0
    # absurd coordinates (an imported template) cost no huge grid and do not break the pairing
    wide = np.concatenate([m, [[1e12, 10, 0, 1, 50], [-1e12, 10, 1, 2, 50]]]).astype(np.float32)
    assert matcher.score(wide, m) == pytest.approx(matcher.score(m, m), rel=0.15)


def test_iso_export_import_gives_the_same_score(extracted):
    p, q = extracted(f"{DB1}/102_1.tif"), extracted(f"{DB1}/102_3.tif")
    tp, tq = p.template(finger=2, impression=1), q.template(finger=2, impression=3)
    direct = matcher.score(tp.minutiae, tq.minutiae)
    rp, rq = Template.from_iso(tp.to_iso()), Template.from_iso(tq.to_iso())
    assert (rp.finger, rp.impression, rp.width, rp.height, rp.dpi) == (2, 1, tp.width, tp.height, 500)
    assert len(rp.minutiae) == len(tp.minutiae)
    assert np.abs(rp.minutiae[:, :2] - np.round(tp.minutiae[:, :2])).max() == 0
    assert matcher.score(rp.minutiae, rq.minutiae) == pytest.approx(direct, rel=0.05)
    # a second round trip is exact
    assert Template.from_iso(rp.to_iso()).to_iso() == rp.to_iso()
    js = Template.from_json(tp.to_json())
    assert matcher.score(js.minutiae, tq.minutiae) == pytest.approx(direct, rel=0.01)


def test_sourceafis_iso_templates_import_and_match(fp_root):
    folder = fp_root / "sourceafis"
    probe = Template.from_iso((folder / "iso-probe.dat").read_bytes())
    matching = Template.from_iso((folder / "iso-matching.dat").read_bytes())
    other = Template.from_iso((folder / "iso-nonmatching.dat").read_bytes())
    assert (probe.width, probe.height, probe.dpi, len(probe.minutiae)) == (224, 288, 500, 38)
    assert len(other.minutiae) == 39
    assert set(np.unique(probe.minutiae[:, 3])) <= {1, 2}
    assert matcher.score(probe.minutiae, matching.minutiae) > threshold_for(0.0001)
    assert matcher.score(probe.minutiae, other.minutiae) < threshold_for(0.01)


def test_iso_record_layout_follows_the_2005_standard(extracted):
    import struct

    tpl = extracted(f"{DB1}/101_1.tif").template(finger=7, impression=2)
    rec = tpl.to_iso()
    assert rec[:8] == b"FMR\x00 20\x00"
    length, equip, w, h, xres, yres, views, _ = struct.unpack(">IHHHHHBB", rec[8:24])
    assert length == len(rec) and (w, h) == (388, 374) and xres == yres == 197 and views == 1  # 197 px/cm = 500 dpi
    pos, view_imp, quality, n = struct.unpack(">BBBB", rec[24:28])
    assert (pos, view_imp & 0x0F, quality, n) == (7, 2, tpl.quality, len(tpl.minutiae))
    # then the extended data: its length and one area (type, length including its header, the orientation field)
    assert len(rec) == 24 + 4 + 6 * n + 2 + 4 + tpl.orientation.size
    first = struct.unpack(">HHBB", rec[28:34])
    m = tpl.minutiae[0]
    assert first[0] >> 14 == {1: 1, 2: 2}[int(m[3])] and first[0] & 0x3FFF == round(m[0]) and first[1] == round(m[1])
    # ISO angles are counter-clockwise in units of 360/256 degrees
    assert first[2] == round(((-m[2]) % (2 * math.pi)) / (2 * math.pi) * 256) % 256


@pytest.mark.parametrize("data", [b"", b"FMR\x00 20\x00", b"FMR\x00 30\x00" + bytes(40), b"not a template" * 5])
def test_broken_iso_records_are_refused(data):
    with pytest.raises(TemplateFormatError):
        Template.from_iso(data)


@pytest.mark.parametrize("x", [-5.0, 1e12, float("nan")])
def test_json_templates_with_impossible_coordinates_are_refused(x):
    doc = {"width": 300, "height": 300, "minutiae": [{"x": 10, "y": 10, "direction": 0, "type": "ending"},
                                                      {"x": x, "y": 20, "direction": 1, "type": "bifurcation"}]}
    with pytest.raises(TemplateFormatError):
        Template.from_json(doc)


def test_score_to_fmr_table_is_monotonic():
    thresholds = [threshold_for(f) for f in (0.1, 0.01, 0.001, 0.0001)]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    assert fmr_of(thresholds[2]) == pytest.approx(0.001, rel=0.05)
    with pytest.raises(BadRequest):
        threshold_for(0)


def test_identify_finds_the_right_finger_among_all_enrolled(extracted):
    """Every finger of DB1_B enrolled with two impressions; a third impression of five of them is searched."""
    ids, templates = [], []
    for f in range(101, 111):
        for i in (1, 2):
            ids.append(f"{f}")
            templates.append(extracted(f"{DB1}/{f}_{i}.tif").minutiae)
    gallery = matcher.Gallery(ids, templates)
    thr = threshold_for(0.001)
    for f in (101, 103, 105, 107, 109):
        scores = gallery.scores(extracted(f"{DB1}/{f}_4.tif").minutiae)
        best = int(np.argmax(scores))
        assert ids[best] == f"{f}" and scores[best] >= thr, (f, ids[best], scores.max())
        others = [s for s, i in zip(scores, ids, strict=True) if i != f"{f}"]
        assert max(others) < thr


def test_an_unmatched_uncertain_minutia_costs_less_than_a_certain_one(extracted):
    """The common-area counts weigh a minutia under RELIABLE_QUALITY by UNRELIABLE_WEIGHT: the same spurious
    minutiae added to a print lower its score against the original less when the extractor was unsure."""
    m = extracted(f"{DB1}/101_1.tif").minutiae
    m = m[m[:, 4] >= matcher.RELIABLE_QUALITY]
    rng = np.random.default_rng(3)
    lo, hi = m[:, :2].min(axis=0), m[:, :2].max(axis=0)
    extra = np.column_stack([rng.uniform(lo, hi, (12, 2)), rng.uniform(0, 2 * np.pi, 12), np.ones(12), np.zeros(12)])

    def with_extra(quality: float) -> np.ndarray:
        e = extra.copy()
        e[:, 4] = quality
        return np.vstack([m, e]).astype(np.float32)

    def s(a, b, w):
        return float(matcher.score_pairs(matcher.pack([a, b], w), [(0, 1)])[0])

    unsure, sure = with_extra(30), with_extra(90)
    assert matcher.UNRELIABLE_WEIGHT < 1
    assert s(m, unsure, matcher.UNRELIABLE_WEIGHT) > s(m, sure, matcher.UNRELIABLE_WEIGHT)
    assert s(m, unsure, 1.0) == pytest.approx(s(m, sure, 1.0))  # weight 1: counted in full, as before
    assert s(m, unsure, 0.0) > s(m, unsure, 0.5) > s(m, unsure, 1.0)  # the lighter, the less they cost
    assert matcher.score(m, unsure) == pytest.approx(s(m, unsure, matcher.UNRELIABLE_WEIGHT))
