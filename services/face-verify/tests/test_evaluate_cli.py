"""The evaluation metrics, the evaluate CLI on a folder with truth.csv + pairs.csv, and worker settings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bio_face_verify.cli import main
from bio_face_verify.evaluate import load_dataset, roc_metrics


def test_roc_metrics_on_known_distances():
    genuine = np.array([0.1, 0.2, 0.3, 0.7])  # one genuine pair above the threshold
    impostor = np.array([0.5, 0.8, 0.9, 1.0, np.inf])  # one impostor below it
    m = roc_metrics(genuine, impostor, 0.6)
    assert m["accuracy"] == pytest.approx(7 / 9)
    assert m["far"] == pytest.approx(1 / 5) and m["frr"] == pytest.approx(1 / 4)
    assert 0.2 <= m["eer"] <= 0.25
    assert m["tar_at_far_1pct"] == pytest.approx(0.75)  # threshold below 0.5: 3 of 4 genuine accepted
    perfect = roc_metrics(np.array([0.1, 0.2]), np.array([0.9, np.inf]), 0.6)
    assert perfect["accuracy"] == 1 and perfect["eer"] == 0 and perfect["tar_at_far_1pct"] == 1


def test_dataset_pools_subfolders_and_skips_byte_identical_files(face_data):
    ds = load_dataset(face_data)
    assert ds.duplicates >= 2  # face_recognition repeats obama.jpg, obama2.jpg and biden.jpg
    assert len(ds.pairs) == len(ds.images) * (len(ds.images) - 1) // 2
    assert all(not name.startswith("/") for name in ds.images)


def test_evaluate_cli_on_a_folder_with_pairs(tmp_path, face_data, capsys):
    folder = tmp_path / "set"
    folder.mkdir()
    files = {"l1.jpg": "openface/lennon-1.jpg", "l2.jpg": "openface/lennon-2.jpg",
             "c1.jpg": "openface/clapton-1.jpg", "c2.jpg": "openface/clapton-2.jpg"}
    for name, rel in files.items():
        shutil.copy(face_data / rel, folder / name)
    (folder / "truth.csv").write_text("image,identity\nl1.jpg,lennon\nl2.jpg,lennon\nc1.jpg,clapton\nc2.jpg,clapton\n")
    (folder / "pairs.csv").write_text("image_a,image_b,same\nl1.jpg,l2.jpg,1\nc1.jpg,c2.jpg,1\nl1.jpg,c1.jpg,0\n"
                                      "l2.jpg,c2.jpg,0\n")
    main(["evaluate", str(folder), "--out", str(tmp_path / "report")])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] == 4 and report["genuine_pairs"] == 2
    assert set(report["pipelines"]) == {"mtcnn+dlib", "dlib-plain"}  # no FaceNet weights cached here
    for m in report["pipelines"].values():
        assert m["accuracy"] == 1.0 and m["eer"] == 0.0 and m["failed_images"] == {}
    assert "| mtcnn+dlib |" in (tmp_path / "report.md").read_text()
    assert "dlib-plain" in capsys.readouterr().out


def test_worker_settings_time_limit_and_child_recycling(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIO_")}
    env.update(BIO_FACE_VERIFY_VAR_DIR=str(tmp_path))
    code = ("import bio_face_verify.tasks as t; c = t.app.conf; "
            "print(c.task_time_limit, c.task_soft_time_limit, c.worker_max_tasks_per_child, c.task_acks_late, "
            "c.worker_prefetch_multiplier)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == ["60", "55", "200", "True", "1"]
