"""``bio-face-recognition bench-search``: the JSON contract, on a small gallery of real + generated embeddings
(rows of the service's table with the sealed column, the index through the sealed blob store)."""

from __future__ import annotations

import json

import pytest

from bio_face_recognition.bench_search import run


@pytest.mark.data
def test_bench_search_reports_the_contract_fields(data_dir, tmp_path):
    report = run(21_000, tmp_path / "work", data_dir, probes=200)
    for key in ("size", "p50_ms", "p99_ms", "memory_bytes", "build_s", "recall_at_1", "load_s", "nprobe",
                "rerank_fetch_p50_ms", "catch_up_s", "save_s"):
        assert key in report, key
    assert report["size"] == 21_000 and report["approximate"]
    assert report["recall_at_1"] >= 0.99 and report["recall_at_1_real"] >= 0.95
    # the compressed codes are resident, not a float32 matrix (10.8 MB here; the process's fixed growth,
    # libraries and the database connection, is a few MB at any size)
    assert 0 < report["rss_anon_growth"] < report["index_nbytes"] + 21_000 * 128 * 4
    assert report["memory_bytes"] > report["index_nbytes"]
    assert report["mate_distance_median"]["synthetic"] < report["mate_distance_median"]["tuning"]
    json.dumps(report)
