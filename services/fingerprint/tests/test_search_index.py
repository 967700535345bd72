"""Two-stage 1:N search: MCC cylinders, the LSH prefilter keeps the mates, sharded search merges to the
unsharded result, the fan-out helper (in-process and as a Celery group)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bio_fingerprint.engine import synthetic
from bio_fingerprint.engine.indexing import LshParams, choose_bits, cylinders, default_positions, hashes
from bio_fingerprint.engine.shards import Probe, Shard, identify, merge, search_shard, shard_of, split
from bio_shared.fanout import fan_out, register_shard_task


def _finger(rng: np.random.Generator, n: int = 40) -> np.ndarray:
    """Random minutiae on a 320 x 380 print: at least 14 px apart, directions from a smooth field."""
    pts: list[tuple[float, float]] = []
    while len(pts) < n:
        p = rng.uniform((20, 20), (340, 400))
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 >= 196 for q in pts):
            pts.append((float(p[0]), float(p[1])))
    xy = np.asarray(pts)
    cx, cy = rng.uniform(120, 240), rng.uniform(150, 250)
    theta = 0.5 * np.arctan2(xy[:, 1] - cy, xy[:, 0] - cx) + rng.normal(0, 0.2, n) + rng.integers(0, 2, n) * math.pi
    return np.column_stack([xy, np.angle(np.exp(1j * theta)), rng.integers(1, 3, n), rng.uniform(30, 90, n)]
                           ).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(3)
    fingers = [_finger(rng) for _ in range(300)]
    gallery = [synthetic.impression(f, rng) for f in fingers]
    mates = list(range(0, 300, 10))
    probes = [synthetic.impression(fingers[i], rng, keep=(0.7, 0.9)) for i in mates]
    positions = choose_bits(np.concatenate([cylinders(t) for t in gallery[:60]]), LshParams())
    ids = [f"t{i:03d}" for i in range(len(gallery))]
    return ids, gallery, probes, mates, positions


def test_cylinders_do_not_change_when_the_print_moves():
    rng = np.random.default_rng(1)
    m = _finger(rng)
    a, b = cylinders(m), cylinders(synthetic.rigid(m, 0.7, 35.0, -20.0))
    assert a.shape == b.shape and len(a) >= 30
    assert (a == b).mean() > 0.98
    other = cylinders(_finger(rng))
    assert (a[:20] == other[:20]).mean() < (a == b).mean() - 0.1


def test_prefilter_keeps_the_mates(world):
    ids, gallery, probes, mates, positions = world
    shard = Shard(ids, gallery, positions)
    ranks = []
    for probe, mate in zip(probes, mates, strict=True):
        order = shard.prefilter.select(hashes(cylinders(probe), positions), len(ids))
        ranks.append(int(np.flatnonzero(order == mate)[0]))
    ranks = np.asarray(ranks)
    assert np.mean(ranks < 0.1 * len(ids)) >= 0.95  # mates within a 10 % penetration
    assert np.median(ranks) <= 2


def test_default_positions_are_stable_and_informative(world):
    _, gallery, _, _, _ = world
    a, b = default_positions(), default_positions()
    assert np.array_equal(a, b) and a.shape == (LshParams().functions, LshParams().bits)
    freq = np.concatenate([cylinders(t) for t in gallery[:60]]).mean(0)
    assert freq[a.ravel()].min() > 0.02  # never a bit that is always 0


def test_two_stage_search_finds_the_mate_with_full_match_scores(world):
    ids, gallery, probes, mates, positions = world
    shard = Shard(ids, gallery, positions)
    found = 0
    for probe, mate in zip(probes, mates, strict=True):
        p = Probe.of(probe, positions)
        hits = search_shard(shard, p, top_k=3, penetration=0.05)
        full = shard.match(p.prepared, np.arange(len(shard)))
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert all(h.score == full[ids.index(h.template_id)] for h in hits)  # the full matcher decides
        found += hits[0].template_id == ids[mate]
    assert found / len(mates) >= 0.9


def test_sharded_search_equals_unsharded(world):
    ids, gallery, probes, _, positions = world
    whole = [Shard(ids, gallery, positions)]
    parts = split(ids, gallery, 3, positions)
    assert sorted(i for p in parts for i in p.ids) == sorted(ids) and all(len(p) for p in parts)
    for probe in probes[:8]:
        p = Probe.of(probe, positions)
        assert identify(parts, p, top_k=5, penetration=1.0) == identify(whole, p, top_k=5, penetration=1.0)
        # with the prefilter, a shard may only keep other templates: never better scores than exhaustive
        pre = identify(parts, p, top_k=5, penetration=0.3)
        assert pre[0].score <= identify(whole, p, top_k=1, penetration=1.0)[0].score


def test_merge_orders_by_score_then_id():
    from bio_fingerprint.engine.shards import Hit

    a = [Hit(50.0, "b"), Hit(10.0, "c")]
    b = [Hit(50.0, "a"), Hit(70.0, "d")]
    assert [h.template_id for h in merge([a, b], top_k=3)] == ["d", "a", "b"]
    assert merge([], top_k=3) == []


def test_shard_of_is_stable_and_spreads():
    assert shard_of("3f2a9c", 8) == shard_of("3f2a9c", 8)
    assert shard_of("abc", 8) == 0x352441C2 % 8  # zlib.crc32(b"abc"): the same in every process
    counts = np.bincount([shard_of(f"{i:032x}", 4) for i in range(4000)], minlength=4)
    assert counts.min() > 850


def _square_sum(a: int, b: int) -> int:
    return a * a + b


def test_fan_out_in_process_and_as_celery_group():
    calls = [(1, 2), (3, 4), (5, 6)]
    assert fan_out(_square_sum, calls) == [3, 13, 31]
    from celery import Celery

    app = Celery("bio_test_fanout", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.update(task_always_eager=True)
    register_shard_task(app, "bio_test.square_sum", _square_sum)
    assert fan_out(_square_sum, calls, app=app, task_name="bio_test.square_sum") == [3, 13, 31]


def test_shard_search_filters_and_keeps_the_best_of_each_group(world, monkeypatch):
    from bio_fingerprint.engine import shards

    monkeypatch.setattr(shards, "MIN_CANDIDATES", 10)  # the prefilter chooses among the allowed ones
    ids, gallery, probes, mates, positions = world
    shard = Shard(ids, gallery, positions)
    p = Probe.of(probes[1], positions)
    full = shard.match(p.prepared, np.arange(len(shard)))
    groups = np.arange(len(ids)) // 3  # three templates per group
    hits = search_shard(shard, p, top_k=5, penetration=1.0, groups=groups)
    picked = [ids.index(h.template_id) for h in hits]
    assert len({int(groups[i]) for i in picked}) == 5  # five distinct groups, each by its best template
    best = sorted(((full[groups == g].max(), g) for g in np.unique(groups)), reverse=True)[:5]
    assert [int(groups[i]) for i in picked] == [int(g) for _, g in best]
    allowed = np.zeros(len(ids), bool)
    allowed[1::2] = True
    allowed[mates[1]] = True  # the probe's mate (an even index) among them
    for pen, size in ((1.0, 151), (0.1, 16)):
        assert len(shard.candidates(p.hashes, pen, allowed)) == size
        kept = search_shard(shard, p, top_k=200, penetration=pen, allowed=allowed)
        assert len(kept) == size and all(allowed[ids.index(h.template_id)] for h in kept)
    assert search_shard(shard, p, top_k=1, penetration=0.1, allowed=allowed)[0].template_id == ids[mates[1]]
    assert search_shard(Shard([], [], positions), p) == []
