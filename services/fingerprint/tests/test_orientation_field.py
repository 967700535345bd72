"""The orientation field kept with a template: encoding, agreement under an alignment, its part in the score,
and its way through ISO / JSON records, galleries and shards."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from bio_fingerprint.engine import matcher, orientation_field
from bio_fingerprint.engine.indexing import default_positions
from bio_fingerprint.engine.orientation_field import BLOCK, HEADER, OUTSIDE, agreement, from_orientation, validate
from bio_fingerprint.engine.shards import Probe, Shard, search_shard
from bio_fingerprint.engine.template import FIELD_AREA, Template, TemplateFormatError

DB1 = "fvc2002/DB1_B"


def _field(rows: int, cols: int, angle_deg: float) -> np.ndarray:
    """An encoded field of one orientation (image convention) everywhere."""
    cells = np.full((rows, cols), int(round(angle_deg)) % 180, np.uint8)
    return np.concatenate([np.array([BLOCK, 0, rows, 0, cols], np.uint8), cells.ravel()])


def test_encoding_of_a_pixel_orientation_map():
    h, w = 5 * BLOCK + 3, 7 * BLOCK  # rows cut to whole cells
    ccw = np.full((h, w), math.radians(30), np.float32)  # pyfing's counter-clockwise convention
    mask = np.full((h, w), 255, np.uint8)
    mask[:, :BLOCK] = 0  # the first column of cells is background
    f = from_orientation(ccw, mask)
    assert f[0] == BLOCK and (f[1] << 8 | f[2]) == 5 and (f[3] << 8 | f[4]) == 7 and f.size == HEADER + 35
    cells = f[HEADER:].reshape(5, 7)
    assert (cells[:, 0] == OUTSIDE).all()
    assert (cells[:, 1:] == 150).all()  # 30 deg counter-clockwise is 150 deg with y down
    assert np.array_equal(validate(f), f)
    assert from_orientation(ccw[:4], mask[:4]).size == 0  # smaller than a cell: no field


@pytest.mark.parametrize("bad", [np.array([16, 0, 2, 0, 2, 1, 2, 3], np.uint8),  # 4 cells declared, 3 given
                                 np.array([0, 0, 1, 0, 1, 5], np.uint8),  # block size 0
                                 np.array([16, 0, 1, 0, 1, 200], np.uint8)])  # not an angle
def test_malformed_fields_are_refused(bad):
    with pytest.raises(ValueError):
        validate(bad)


def test_agreement_is_one_for_the_same_flow_under_its_alignment_and_lower_for_another():
    a = _field(20, 20, 40)
    n, m = agreement(a, a, 0.0, 0.0, 0.0)
    assert n == 400 and m == pytest.approx(1.0)
    # B is A's flow turned by -25 deg: the alignment that turns it back by +25 deg restores it
    b = _field(20, 20, 15)
    rot = math.radians(25)
    n, m = agreement(a, b, rot, 100.0, -20.0)
    assert 0 < n < 400 and m == pytest.approx(1.0, abs=1e-3)
    assert agreement(a, b, 0.0, 0.0, 0.0)[1] == pytest.approx(math.cos(2 * rot), abs=1e-3)
    assert agreement(a, _field(20, 20, 130), 0.0, 0.0, 0.0)[1] == pytest.approx(-1.0, abs=1e-3)  # crossing flow
    assert agreement(a, orientation_field.EMPTY, 0.0, 0.0, 0.0) == (0, 0.0)
    assert agreement(a, b, 0.0, 10_000.0, 0.0)[0] == 0  # no common cell


def test_field_factor_trusts_many_cells_and_falls_back_to_the_prior_with_none():
    prior = (matcher.FIELD_PRIOR - matcher.FIELD_FLOOR) / (matcher.FIELD_FULL - matcher.FIELD_FLOOR)
    assert matcher.field_factor(0, 0.0) == pytest.approx(prior)
    assert matcher.field_factor(10_000, 0.99) == 1.0
    assert matcher.field_factor(10_000, 0.3) == 0.0
    assert matcher.field_factor(10, 0.3) > matcher.field_factor(200, 0.3)  # few cells: little evidence


def test_a_pairing_whose_ridge_flow_disagrees_loses_its_score(extracted):
    a, b = extracted(f"{DB1}/101_1.tif"), extracted(f"{DB1}/101_2.tif")
    other = extracted(f"{DB1}/104_1.tif")
    r = matcher.match_raw(*matcher.prepare(a.minutiae, field=a.orientation),
                          *matcher.prepare(b.minutiae, field=b.orientation))
    assert r[9] > 50 and r[10] > 0.9  # many common cells, the same flow
    assert r[0] == pytest.approx(r[8] * matcher.field_factor(r[9], r[10]))
    own = matcher.score(a.minutiae, b.minutiae, a.orientation, b.orientation)
    swapped = matcher.score(a.minutiae, b.minutiae, a.orientation, other.orientation)
    fieldless = matcher.score(a.minutiae, b.minutiae)
    assert swapped < 0.8 * own
    assert fieldless == pytest.approx(r[8] * matcher.field_factor(0, 0.0))


def test_templates_keep_the_field_in_json_and_in_an_iso_extended_data_area(extracted):
    p = extracted(f"{DB1}/102_1.tif")
    tpl = p.template(finger=2, impression=1)
    assert tpl.orientation.size > HEADER
    iso = tpl.to_iso()
    back = Template.from_iso(iso)
    assert np.array_equal(back.orientation, tpl.orientation)
    assert np.array_equal(Template.from_json(tpl.to_json()).orientation, tpl.orientation)
    # the area follows the minutiae: count, then (type, length including its header, data)
    off = 24 + 4 + 6 * len(tpl.minutiae)
    (total,) = struct.unpack(">H", iso[off:off + 2])
    kind, length = struct.unpack(">HH", iso[off + 2:off + 6])
    assert (kind, length, total) == (FIELD_AREA, 4 + tpl.orientation.size, 4 + tpl.orientation.size)
    # another vendor's area before ours is skipped; a record with only theirs has no field
    theirs = struct.pack(">HH", 0x0001, 8) + b"\x01\x02\x03\x04"
    ours = iso[off + 2:]
    both = iso[:off] + struct.pack(">H", len(theirs) + len(ours)) + theirs + ours
    both = both[:8] + struct.pack(">I", len(both)) + both[12:]
    assert np.array_equal(Template.from_iso(both).orientation, tpl.orientation)
    only = iso[:off] + struct.pack(">H", len(theirs)) + theirs
    only = only[:8] + struct.pack(">I", len(only)) + only[12:]
    assert Template.from_iso(only).orientation.size == 0


def test_a_corrupt_field_in_a_record_is_refused(extracted):
    tpl = extracted(f"{DB1}/102_1.tif").template()
    doc = tpl.to_json()
    doc["orientation_field"] = "!!not base64"
    with pytest.raises(TemplateFormatError):
        Template.from_json(doc)
    doc["orientation_field"] = "EAABAAH/AQ=="  # 1 x 1 cells declared, 2 given
    with pytest.raises(TemplateFormatError):
        Template.from_json(doc)
    iso = bytearray(tpl.to_iso())
    iso[-1] = 200  # the last cell: not an angle
    with pytest.raises(TemplateFormatError):
        Template.from_iso(bytes(iso))


def test_galleries_and_shards_score_with_the_fields_as_one_comparison_does(extracted):
    names = [f"{DB1}/{f}_{i}.tif" for f in (101, 102, 103) for i in (1, 2)]
    prints = [extracted(n) for n in names]
    minutiae, fields = [p.minutiae for p in prints], [p.orientation for p in prints]
    probe = extracted(f"{DB1}/102_3.tif")
    single = [matcher.score(probe.minutiae, m, probe.orientation, f) for m, f in zip(minutiae, fields, strict=True)]
    gallery = matcher.Gallery(list(range(6)), minutiae, fields)
    assert np.allclose(gallery.scores(probe.minutiae, probe.orientation), single, rtol=0, atol=1e-9)
    positions = default_positions()
    shard = Shard(list(range(3)), minutiae[:3], positions, fields[:3]).extended(list(range(3, 6)), minutiae[3:],
                                                                               fields[3:])
    p = Probe.of(probe.minutiae, positions, probe.orientation)
    assert np.allclose(shard.match(p.prepared, np.arange(6)), single, rtol=0, atol=1e-9)
    assert np.allclose(shard.match(p.prepared, np.array([4, 1])), [single[4], single[1]], rtol=0, atol=1e-9)
    assert search_shard(shard, p, top_k=1, penetration=1.0)[0].template_id in (2, 3)  # finger 102
