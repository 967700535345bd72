"""The common area of a transformed set's genuine pairs (bio_fingerprint/common_area.py): the crop window
mapped back into its impression, the matcher's alignment, and the floor they give."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np

from bio_fingerprint import common_area
from bio_fingerprint.engine import devsets, matcher

DB1 = "fvc2002/DB1_B"


def test_crop_window_maps_the_crop_back_onto_its_impression(gray_of):
    img = gray_of(f"{DB1}/102_3.tif")
    crop, params = devsets.small_print(img, np.random.default_rng(7), area=(0.38, 0.52))
    corners = devsets.crop_window(img, params)
    x0, y0, cw, ch = params["window"]
    assert crop.shape == (ch, cw)
    # the affine map from the crop's corners to the impression's samples the crop's pixels back from it
    back = cv2.getAffineTransform(np.float32([[0, 0], [cw, 0], [cw, ch]]), corners[:3].astype(np.float32))
    resampled = cv2.warpAffine(img, back, (cw, ch), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    inner = (slice(5, ch - 5), slice(5, cw - 5))
    r = np.corrcoef(resampled[inner].ravel().astype(float), crop[inner].ravel().astype(float))[0, 1]
    assert r > 0.95, r
    # a rectangle turned: same area, sides perpendicular
    side = corners[1] - corners[0]
    assert math.isclose(float(np.hypot(*side)), cw, rel_tol=1e-6)
    assert abs(float(np.dot(side, corners[3] - corners[0]))) < 1e-6 * cw * ch
    # cv2 turned the impression counter-clockwise on screen: the window's top side, level in the turned
    # impression, lies at +angle (image coordinates, y down) in the impression itself
    assert math.isclose(math.degrees(math.atan2(side[1], side[0])), params["angle_deg"], abs_tol=1e-6)


def _minutiae(rng: np.random.Generator, n: int = 40) -> np.ndarray:
    return np.column_stack([rng.uniform(20, 280, n), rng.uniform(20, 280, n), rng.uniform(0, 2 * np.pi, n),
                            rng.integers(1, 3, n), rng.uniform(60, 100, n)]).astype(np.float32)


def test_match_reports_the_alignment_of_b_onto_a():
    a = _minutiae(np.random.default_rng(3))
    rot, ox, oy = math.radians(25.0), 40.0, -30.0
    c, s = math.cos(rot), math.sin(rot)
    b = a.copy()  # b is a moved by the inverse map: aligning b onto a must give (rot, ox, oy) back
    b[:, 0] = c * (a[:, 0] - ox) + s * (a[:, 1] - oy)
    b[:, 1] = -s * (a[:, 0] - ox) + c * (a[:, 1] - oy)
    b[:, 2] = (a[:, 2] - rot) % (2 * math.pi)
    res = matcher.match_raw(*matcher.prepare(a), *matcher.prepare(b))
    assert res[1] == len(a)
    assert math.isclose(res[5], rot, abs_tol=1e-3)
    assert math.isclose(res[6], ox, abs_tol=0.5) and math.isclose(res[7], oy, abs_tol=0.5)


def _hand_set(folder: Path, source: Path, windows: list[list[int]]) -> list[tuple[Path, str]]:
    folder.mkdir(parents=True)
    with open(folder / "truth.csv", "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["image", "finger_id", "source", "params"])
        for i, w in enumerate(windows):
            wr.writerow([f"{i:04d}.png", "f1", source.name, repr({"angle_deg": 0.0, "window": w, "area": 0.3})])
    return [(source, "f1")] * len(windows)


def test_common_fraction_of_crops_of_one_impression(tmp_path: Path):
    source = tmp_path / "1_1.png"
    cv2.imwrite(str(source), np.full((300, 300), 128, np.uint8))
    # three crops of the same impression: left half, right third, and a middle band over half of each
    windows = [[0, 0, 150, 300], [200, 0, 100, 300], [100, 0, 100, 300]]
    rows = _hand_set(tmp_path / "set", source, windows)
    template = _minutiae(np.random.default_rng(5))
    fractions = common_area.common_fractions(rows, [template] * 3, tmp_path / "set")
    # genuine pairs in fvc_pairs order: (0, 1), (0, 2), (1, 2); each over the smaller window
    assert fractions[0] is not None and fractions[0] < 1e-6
    assert math.isclose(fractions[1], 0.5, abs_tol=0.01)
    assert math.isclose(fractions[2], 0.0, abs_tol=0.01)


def test_pairs_whose_impressions_do_not_align_are_left_out(tmp_path: Path):
    source = tmp_path / "1_1.png"
    cv2.imwrite(str(source), np.full((300, 300), 128, np.uint8))
    rows = _hand_set(tmp_path / "set", source, [[0, 0, 150, 300], [100, 0, 150, 300]])
    unrelated = [_minutiae(np.random.default_rng(1)), _minutiae(np.random.default_rng(2))]
    assert common_area.common_fractions(rows, unrelated, tmp_path / "set") == [None]


def test_impressions_align_by_their_minutiae_score_not_by_the_fieldless_fused_one(tmp_path: Path):
    # the full impressions are prepared without orientation fields, so their fused score carries the
    # prior's factor (0.67); whether they align is a question for the minutiae pairing alone
    source = tmp_path / "1_1.png"
    cv2.imwrite(str(source), np.full((300, 300), 128, np.uint8))
    rows = _hand_set(tmp_path / "set", source, [[0, 0, 200, 300], [100, 0, 200, 300]])
    a = _minutiae(np.random.default_rng(5))
    b = np.concatenate([a[:28], _minutiae(np.random.default_rng(9), 12)])  # 28 of 40 shared, not moved
    res = matcher.match_raw(*matcher.prepare(a), *matcher.prepare(b))
    assert res[0] < common_area.ALIGNED_SCORE <= res[8]
    [fraction] = common_area.common_fractions(rows, [a, b], tmp_path / "set")
    assert fraction is not None and math.isclose(fraction, 0.5, abs_tol=0.01)


def test_summary_counts_the_floor_and_the_eer_where_pairs_share_skin():
    fractions = [0.02, 0.5, 0.7, None, 0.05]
    genuine = np.array([0.1, 30.0, 40.0, 20.0, 0.3])
    impostor = np.array([0.0, 0.2, 0.5, 1.0, 2.0])
    out = common_area.summary(fractions, genuine, impostor)
    assert out["genuine_pairs"] == 5 and out["aligned"] == 4 and out["under_low_fraction"] == 2
    assert out["fnmr_floor"] == 2 / 5
    assert out["all_pairs_eer_where_shared"] == 0.0  # the two pairs that share skin beat every impostor
    assert out["genuine_scores_of_low_pairs"] == [0.1, 0.3]
