"""bench-search on a small gallery built around a few real DB1_B prints (their templates written to the
benchmark's cache, so nothing else is extracted), run as the command users run (a fresh process: the
benchmark forks one worker per shard, which is not safe from a test process with threads): the JSON
contract, the penetration curve, and partial re-acquired probes (--probe-keep)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

DB1 = "fvc2002/DB1_B"
FINGERS = (101, 102, 103, 104)


def _bench(tmp_path, extracted, fp_root, *args: str) -> dict:
    minutiae = [np.asarray(extracted(f"{DB1}/{f}_{i}.tif").minutiae[:, :5], np.float32) for f in FINGERS for i in (1, 2)]
    np.savez(tmp_path / "fp_real_templates.npz", minutiae=np.concatenate(minutiae),
             offsets=np.cumsum([0] + [len(m) for m in minutiae]),
             fingers=np.asarray([f"fvc:{f}" for f in FINGERS for _ in (1, 2)]))
    out = tmp_path / "report.json"
    env = {**os.environ, "BIOMETRICS_DATA_DIR": str(fp_root.parent)}
    subprocess.run([sys.executable, "-m", "bio_fingerprint.cli", "bench-search", "--size", "300", "--work", str(tmp_path),
                    "--json", str(out), *args], check=True, env=env, timeout=240, capture_output=True)
    return json.loads(out.read_text())


def test_report_contract_and_curve(tmp_path, extracted, fp_root):
    report = _bench(tmp_path, extracted, fp_root, "--shards", "2", "--timed", "2")
    for key in ("size", "p50_ms", "p99_ms", "memory_bytes", "build_s", "hit_rate", "hit_rate_exhaustive", "penetration"):
        assert key in report, key
    assert report["size"] == 300 and sum(report["shard_sizes"]) == 300 and report["probes"] == len(FINGERS)
    retrieval = [p["retrieval"] for p in report["curve"]]
    assert retrieval == sorted(retrieval) and report["curve"][-1] == {"penetration": 1.0, "retrieval": 1.0,
                                                                      "hit_rate": report["hit_rate_exhaustive"]}
    assert report["projection_1m_8_shards"]["projected"] is True and report["probe_keep"] is None
    assert report["probe_minutiae_mean"] == np.mean([len(extracted(f"{DB1}/{f}_2.tif").minutiae) for f in FINGERS])


def test_partial_probes_are_smaller_re_acquisitions(tmp_path, extracted, fp_root):
    report = _bench(tmp_path, extracted, fp_root, "--shards", "1", "--timed", "1", "--probe-keep", "0.5")
    full = np.mean([len(extracted(f"{DB1}/{f}_2.tif").minutiae) for f in FINGERS])
    assert report["probe_keep"] == 0.5 and report["probes"] == len(FINGERS)
    assert report["probe_minutiae_mean"] < 0.8 * full  # a window of about half the extent each way
