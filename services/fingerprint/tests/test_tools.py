"""Classic image steps, the distortion generator, the distortion CNN and the FVC metrics."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from bio_fingerprint.engine import distortion, evaluation, preprocess
from bio_fingerprint.engine.classifier import CLASSES, DistortionClassifier, features, model_path

PRINT = "fvc2002/DB2_B/103_2.tif"


@pytest.mark.parametrize("step", [{"op": "grayscale"}, {"op": "normalize"}, {"op": "clahe", "clip_limit": 3},
                                  {"op": "sharpen", "amount": 1.5}, {"op": "contrast", "contrast": 1.4, "brightness": -10},
                                  {"op": "denoise", "method": "median", "strength": 3},
                                  {"op": "denoise", "method": "gaussian", "strength": 1.2}])
def test_classic_steps_keep_geometry_and_change_pixels(gray_of, step):
    g = gray_of(PRINT)
    out = preprocess.apply_steps(g, [step])
    assert out.dtype == np.uint8 and out.shape == g.shape
    if step["op"] != "grayscale":
        assert not np.array_equal(out, g)
    assert np.array_equal(out, preprocess.apply_steps(g, [step]))  # deterministic


def test_clahe_raises_local_contrast_of_a_faint_print(gray_of):
    faint = (gray_of(PRINT).astype(np.float32) * 0.2 + 150).astype(np.uint8)
    out = preprocess.apply_steps(faint, [{"op": "clahe", "clip_limit": 4}])
    assert out.std() > 2 * faint.std()


@pytest.mark.parametrize("steps,word", [([{"op": "blur"}], "unknown operation"),
                                        ([{"op": "clahe", "radius": 3}], "unknown parameters"),
                                        ([{"op": "clahe", "clip_limit": 99}], "clip_limit"),
                                        (["clahe"], "'op'")])
def test_bad_steps_are_refused_with_the_reason(gray_of, steps, word):
    with pytest.raises(ValueError, match=word):
        preprocess.apply_steps(gray_of(PRINT), steps)


@pytest.mark.parametrize("kind", sorted(distortion.DISTORTIONS))
def test_every_distortion_is_seeded_and_keeps_the_size(gray_of, kind):
    g = gray_of(PRINT)
    a, pa = distortion.distort(g, kind, seed=7)
    b, pb = distortion.distort(g, kind, seed=7)
    assert a.shape == g.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and pa == pb
    if kind != "clean":
        assert not np.array_equal(a, g)
        c, _ = distortion.distort(g, kind, seed=8)
        assert not np.array_equal(a, c)


def test_distortions_do_what_they_say(gray_of):
    g = gray_of(PRINT).astype(np.float32)
    low, _ = distortion.distort(gray_of(PRINT), "low_contrast", 1)
    assert low.std() < g.std() / 3
    noisy, _ = distortion.distort(gray_of(PRINT), "noise", 1)
    blurred, _ = distortion.distort(gray_of(PRINT), "blur", 1)
    lap = lambda x: np.abs(np.diff(x.astype(np.float32), axis=1)).mean()  # noqa: E731
    assert lap(noisy) > lap(g) > lap(blurred)
    wet, _ = distortion.distort(gray_of(PRINT), "wet", 1)
    dry, _ = distortion.distort(gray_of(PRINT), "dry", 1)
    assert wet.mean() < g.mean() < dry.mean()


def test_distort_cli_writes_a_labelled_dataset(fp_root, tmp_path):
    src = tmp_path / "clean"
    src.mkdir()
    for name in ("101_1.tif", "102_1.tif"):
        (src / name).write_bytes((fp_root / "fvc2002" / "DB1_B" / name).read_bytes())
    out = tmp_path / "dataset"
    subprocess.run([sys.executable, "-m", "bio_fingerprint.cli", "distort", str(src), str(out), "--kinds",
                    "rotation,noise,wet"], check=True, capture_output=True)
    rows = list(csv.DictReader(open(out / "labels.csv")))
    assert len(rows) == 6 and {r["label"] for r in rows} == {"rotation", "noise", "wet"}
    for r in rows:
        assert (out / r["image"]).is_file() and r["image"].startswith(r["label"] + "/")


def test_distortion_model_is_small_versioned_and_loads():
    path = model_path()
    assert path.is_file() and path.stat().st_size < 2 * 1024 * 1024
    clf = DistortionClassifier()
    assert clf.version == "distortion-cnn-1" and clf.classes == CLASSES


def test_classifier_recognises_clear_distortions_of_unseen_fingers(gray_of):
    clf = DistortionClassifier()
    # fingers 109 and 110 were never used in training
    prints = [gray_of(f"fvc2002/DB1_B/{f}_{i}.tif") for f in (109, 110) for i in (1, 5)]
    for kind in ("noise", "low_contrast"):
        imgs = [distortion.distort(p, kind, seed=100 + k)[0] for k, p in enumerate(prints)]
        probs = clf.predict(imgs)
        assert np.allclose(probs.sum(1), 1, atol=1e-4)
        assert (probs.argmax(1) == CLASSES.index(kind)).sum() >= 3, (kind, probs.round(2))
    assert features(prints[0]).shape == (2, 96, 96)


def test_fvc_protocol_pairs_and_metrics():
    fingers = [f"f{f}" for f in range(10) for _ in range(8)]
    pairs = evaluation.fvc_pairs(fingers)
    assert (len(pairs["genuine"]), len(pairs["impostor"]), len(pairs["impostor_all"])) == (280, 45, 2880)
    perfect = evaluation.metrics([5, 6, 7, 8], [1, 2, 3])
    assert perfect["eer"] == 0 and perfect["zero_fmr"] == 0
    overlap = evaluation.metrics([1, 2, 3, 10], [0, 2.5, 4, 0.5])
    assert overlap["eer"] == 0.5  # for t in (2, 2.5]: FMR = FNMR = 2/4
    pts = evaluation.score_fmr_points(np.arange(1000, dtype=float))
    by = {p["fmr"]: p["threshold"] for p in pts}
    assert 989 < by[0.01] <= 990.01 and 998 < by[0.001] <= 999.01
    assert "<svg" in evaluation.det_svg({"x": evaluation.rates(np.array([5.0, 6]), np.array([1.0, 5.5]))[1:]}, "t")


def _scores_by_finger(n_fingers: int, seed: int) -> dict[str, object]:
    """FVC-shaped scores: genuine ~ N(2, 1), impostor ~ N(0, 1), 8 impressions per finger."""
    rng = np.random.default_rng(seed)
    fingers = [f"f{f}" for f in range(n_fingers) for _ in range(8)]
    pairs = evaluation.fvc_pairs(fingers)
    finger = np.array([int(f[1:]) for f in fingers])
    gen_f = finger[np.array(pairs["genuine"])[:, 0]]
    imp_f = finger[np.array(pairs["impostor_all"])]
    return {"gen": rng.normal(2, 1, len(gen_f)), "imp": rng.normal(0, 1, len(imp_f)), "gen_f": gen_f,
            "imp_f": imp_f, "n": n_fingers}


def test_eer_interval_resamples_fingers_and_narrows_with_more_of_them():
    widths = []
    for n in (10, 60):
        d = _scores_by_finger(n, seed=n)
        eer = evaluation.metrics(d["gen"], d["imp"])["eer"]
        lo, hi = evaluation.eer_interval(d["gen"], d["imp"], d["gen_f"], d["imp_f"], d["n"], reps=300)
        assert lo <= eer <= hi and lo < hi
        widths.append(hi - lo)
    assert widths[1] < 0.6 * widths[0], widths
    # every error comes from one finger: resamples without it (about a third) have no error at all, which a
    # bootstrap over single comparisons would never draw (28 genuine comparisons left out together)
    d = _scores_by_finger(10, seed=1)
    gen = np.where(d["gen_f"] == 0, -5.0, 50.0)
    imp = np.clip(d["imp"], -1.0, 1.0)
    assert evaluation.metrics(gen, imp)["eer"] > 0.05
    lo, hi = evaluation.eer_interval(gen, imp, d["gen_f"], d["imp_f"], d["n"], reps=300)
    assert lo == 0.0 and hi > 0.1
    separated = evaluation.eer_interval(np.full(280, 9.0), imp, d["gen_f"], d["imp_f"], d["n"], reps=50)
    assert separated == [0.0, 0.0]


def test_evaluate_cli_reads_any_truth_csv(fp_root, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    lines = ["image,finger_id,comment"]
    for f in (101, 102):
        for i in (1, 2):
            (folder / f"{f}_{i}.tif").write_bytes((fp_root / "fvc2002" / "DB1_B" / f"{f}_{i}.tif").read_bytes())
            lines.append(f"{f}_{i}.tif,{f},x")
    (folder / "truth.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, "-m", "bio_fingerprint.cli", "evaluate", str(folder), "--extractor", "classic",
                    "--json", str(out), "--det", str(tmp_path / "det.svg")], check=True, capture_output=True)
    import json

    res = json.loads(out.read_text())
    assert res["fvc"]["genuine"] == 2 and res["fvc"]["impostor"] == 1
    for protocol in ("fvc", "all_pairs"):  # each EER comes with its confidence interval over fingers
        lo, hi = res[protocol]["eer_ci95"]
        assert 0 <= lo <= hi <= 1
    assert (tmp_path / "det.svg").read_text().startswith("<svg")


def test_evaluate_cli_names_the_images_it_cannot_use_before_extracting(fp_root, tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "101_1.tif").write_bytes((fp_root / "fvc2002" / "DB1_B" / "101_1.tif").read_bytes())
    (folder / "101_2.tif").write_bytes(b"not an image")
    (folder / "truth.csv").write_text("image,finger_id\n101_1.tif,101\n101_2.tif,101\ngone.tif,102\n")
    out = tmp_path / "r.json"
    run = subprocess.run([sys.executable, "-m", "bio_fingerprint.cli", "evaluate", str(folder), "--json", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "2 of 3 images cannot be used" in run.stderr
    assert "101_2.tif: the file is not a supported image" in run.stderr and "gone.tif" in run.stderr
    assert "Traceback" not in run.stderr and not out.exists()
    (folder / "truth.csv").unlink()
    run = subprocess.run([sys.executable, "-m", "bio_fingerprint.cli", "evaluate", str(folder)], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "has no truth.csv" in run.stderr
