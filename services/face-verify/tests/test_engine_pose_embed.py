"""Pose estimation from five landmarks, the embedders and the FaceNet loading path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bio_face_verify.engine import nets
from bio_face_verify.engine.embed import DLIB_SPEC, FACENET_SPEC, distances
from bio_face_verify.engine.pose import NOSE_DEPTH, NOSE_LEVEL, PoseTolerance, estimate_pose
from bio_face_verify.engine.verify import AnalysisOptions, FaceImageError, Verifier, get_verifier
from bio_testing.shared import decode_file


def project(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """The five landmarks of the pose model's 3-D face, rotated and projected orthographically."""
    em = 2.3  # eye-to-mouth distance in half eye distances
    pts = np.array([[-1, 0, 0], [1, 0, 0], [0, NOSE_LEVEL * em, -NOSE_DEPTH], [-0.8, em, 0], [0.8, em, 0]], float)
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    out = pts @ (rz @ rx @ ry).T
    return out[:, :2] * 40 + 200


@pytest.mark.parametrize("yaw,pitch,roll,tol", [(0, 0, 0, 1), (20, 0, 0, 1), (-45, 0, 0, 1), (0, 15, 0, 1),
                                                (0, -20, 0, 1), (0, 0, 25, 1), (0, 0, -10, 1), (15, 8, 5, 6)])
def test_pose_model_recovers_known_rotations(yaw, pitch, roll, tol):
    """Single-axis rotations exactly; combined ones within a few degrees (yaw and pitch together tilt
    the eye line, which the model reads as roll)."""
    pose = estimate_pose(project(yaw, pitch, roll))
    assert abs(pose.roll - roll) < tol
    assert abs(pose.yaw - yaw) < tol
    assert abs(pose.pitch - pitch) < tol


def test_tolerance_names_each_exceeded_axis():
    tol = PoseTolerance(20, 20, 20)
    assert tol.is_frontal(estimate_pose(project(10, 5, 5)))
    violations = tol.violations(estimate_pose(project(45, 0, 30)))
    assert [v.split()[0] for v in violations] == ["yaw", "roll"]


def test_score_is_a_documented_function_of_distance():
    for spec in (DLIB_SPEC, FACENET_SPEC):
        assert spec.score(spec.threshold) == pytest.approx(0.5)
        assert spec.score(0) > 0.99 and spec.score(spec.threshold * 2) < 0.01
        assert spec.score(float("inf")) == 0.0
        assert all(spec.score(a) > spec.score(b) for a, b in ((0.1, 0.2), (0.5, 0.9)))


def test_distances():
    eu, cos = distances(np.array([1.0, 0]), np.array([0, 1.0]))
    assert eu == pytest.approx(math.sqrt(2)) and cos == pytest.approx(0)


@pytest.fixture(scope="module")
def dlib_verifier() -> Verifier:
    return Verifier("dlib")


OPTS = AnalysisOptions(pose_policy="flag", multiple_faces="largest")


def test_dlib_embeddings_separate_people(dlib_verifier, face_data):
    def emb(rel):
        return dlib_verifier.analyze(decode_file(face_data / rel), "x", OPTS).embedding

    a, b = emb("openface/lennon-1.jpg"), emb("openface/lennon-2.jpg")
    c = emb("openface/clapton-1.jpg")
    assert a.shape == (128,)
    assert distances(a, b)[0] < DLIB_SPEC.threshold < distances(a, c)[0]


def test_facenet_loading_path_with_a_written_weights_file(tmp_path, monkeypatch, face_data):
    """No pretrained weights can be downloaded here: the test writes a randomly initialised model of the
    right shape where the library caches them, and checks it is found and used (no accuracy claim)."""
    torch.manual_seed(0)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    path = nets.facenet_weights_path()
    assert path == tmp_path / "th" / "checkpoints" / "20180402-114759-vggface2.pt"
    assert get_verifier("auto").spec.name == "dlib-resnet-v1"  # absent: dlib
    path.parent.mkdir(parents=True)
    torch.save(nets.InceptionResnetV1().state_dict(), path)
    verifier = get_verifier("auto")
    assert verifier.spec.name == "facenet-vggface2" and verifier.spec.threshold == 1.1
    rgb = decode_file(face_data / "openface" / "adams.jpg")
    e1 = verifier.analyze(rgb, "image_a", OPTS).embedding
    e2 = verifier.analyze(rgb, "image_a", OPTS).embedding
    assert e1.shape == (512,) and np.linalg.norm(e1) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(e1, e2)  # eval mode: deterministic


def test_facenet_weights_of_the_wrong_shape_are_refused_clearly(tmp_path):
    bad = tmp_path / "bad.pt"
    state = nets.InceptionResnetV1(num_classes=10).state_dict()
    torch.save(state, bad)
    with pytest.raises(nets.WeightsError, match="does not fit InceptionResnetV1"):
        nets.load_facenet(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(nets.WeightsError, match="cannot be read"):
        nets.load_facenet(tmp_path / "junk.pt")
    with pytest.raises(nets.WeightsError, match="missing"):
        Verifier("facenet", facenet_weights=tmp_path / "absent.pt")


def test_policies_on_real_photos(dlib_verifier, faces):
    two = decode_file(faces / "examples" / "two_people.jpg")
    with pytest.raises(FaceImageError) as err:
        dlib_verifier.analyze(two, "image_a", AnalysisOptions())
    assert err.value.code == "multiple_faces" and err.value.details["faces"] == 2
    assert dlib_verifier.analyze(two, "image_a", AnalysisOptions(multiple_faces="largest", pose_policy="flag"))
    small = decode_file(faces / "examples" / "obama_small.jpg")
    with pytest.raises(FaceImageError) as err:
        dlib_verifier.analyze(small, "image_b", AnalysisOptions(min_face_px=200))
    assert err.value.code == "face_too_small" and err.value.details["image"] == "image_b"


def test_small_background_detections_do_not_count_as_a_second_face(dlib_verifier, faces):
    """obama.jpg: one portrait; any small extra detection (< 40 % of the face) is not a second person."""
    obama = decode_file(faces / "test_images" / "obama.jpg")
    result = dlib_verifier.analyze(obama, "image_a", AnalysisOptions(pose_policy="flag"))
    assert result.faces_found == 1
    group = decode_file(faces / "knn_examples" / "test" / "obama_and_biden.jpg")
    with pytest.raises(FaceImageError) as err:
        dlib_verifier.analyze(group, "image_a", AnalysisOptions(pose_policy="flag"))
    assert err.value.code == "multiple_faces" and err.value.details["faces"] >= 2
