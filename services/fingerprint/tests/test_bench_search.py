"""bench-search on a small gallery built around a few real DB1_B prints (their templates written to the
benchmark's cache, so nothing else is extracted): the JSON contract, the penetration curve, and partial
re-acquired probes (--probe-keep)."""

from __future__ import annotations

import numpy as np

from bio_fingerprint import bench_search

DB1 = "fvc2002/DB1_B"
FINGERS = (101, 102, 103, 104)


def _cache(tmp_path, extracted) -> None:
    minutiae = [np.asarray(extracted(f"{DB1}/{f}_{i}.tif").minutiae[:, :5], np.float32) for f in FINGERS for i in (1, 2)]
    fingers = [f"fvc:{f}" for f in FINGERS for _ in (1, 2)]
    np.savez(tmp_path / "fp_real_templates.npz", minutiae=np.concatenate(minutiae),
             offsets=np.cumsum([0] + [len(m) for m in minutiae]), fingers=np.asarray(fingers))


def test_report_contract_and_curve(tmp_path, extracted, fp_root):
    _cache(tmp_path, extracted)
    report = bench_search.run(300, fp_root.parent, shards=2, timed=2, work=tmp_path)
    for key in ("size", "p50_ms", "p99_ms", "memory_bytes", "build_s", "hit_rate", "hit_rate_exhaustive", "penetration"):
        assert key in report, key
    assert report["size"] == 300 and sum(report["shard_sizes"]) == 300 and report["probes"] == len(FINGERS)
    retrieval = [p["retrieval"] for p in report["curve"]]
    assert retrieval == sorted(retrieval) and report["curve"][-1] == {"penetration": 1.0, "retrieval": 1.0,
                                                                      "hit_rate": report["hit_rate_exhaustive"]}
    assert report["projection_1m_8_shards"]["projected"] is True and report["probe_keep"] is None


def test_partial_probes_are_smaller_re_acquisitions(tmp_path, extracted, fp_root, monkeypatch):
    _cache(tmp_path, extracted)
    seen: list[int] = []
    real_probe = bench_search.Probe.of

    def spy(minutiae, positions):
        seen.append(len(minutiae))
        return real_probe(minutiae, positions)

    monkeypatch.setattr(bench_search.Probe, "of", spy)
    report = bench_search.run(300, fp_root.parent, shards=1, timed=1, work=tmp_path, probe_keep=0.5)
    full = [len(extracted(f"{DB1}/{f}_2.tif").minutiae) for f in FINGERS]
    assert report["probe_keep"] == 0.5 and len(seen) == len(FINGERS)
    # a window keeping fewer than 12 minutiae is not cut (synthetic.impression), so most, not all, shrink
    assert all(s <= f for s, f in zip(seen, full, strict=True))
    assert sum(s < f for s, f in zip(seen, full, strict=True)) >= len(FINGERS) // 2
