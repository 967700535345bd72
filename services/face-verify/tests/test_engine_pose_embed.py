"""Pose estimation from 68 landmarks (solvePnP), the embedders and the FaceNet loading path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bio_face_verify.engine import nets
from bio_face_verify.engine.embed import DLIB_SPEC, FACENET_SPEC, distances
from bio_face_verify.engine.pose import PoseTolerance, angles, estimate_pose, project_model, rotation_matrix
from bio_face_verify.engine.verify import AnalysisOptions, FaceImageError, Verifier, get_verifier
from bio_testing.shared import decode_file


@pytest.mark.parametrize("yaw,pitch,roll", [(0, 0, 0), (20, 0, 0), (-45, 0, 0), (0, 15, 0), (0, -20, 0),
                                            (0, 0, 25), (0, 0, -10), (15, 8, 5), (-70, 10, -5)])
@pytest.mark.parametrize("centre", [None, (90, 70)])
def test_pnp_recovers_known_rotations_of_the_model(yaw, pitch, roll, centre):
    """The 3-D model projected at a known pose (perspective, also off the image centre) comes back."""
    pose = estimate_pose(project_model(yaw, pitch, roll, centre=centre), 640, 480)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((yaw, pitch, roll), abs=0.05)
    assert pose.reprojection_px < 1e-3


def test_angle_convention_is_the_documented_one():
    """yaw > 0: nose towards the image's right; pitch > 0: looking up; roll > 0: clockwise eye line."""
    front = project_model(0, 0, 0)
    nose_x = lambda pts: (pts[31, 0] + pts[35, 0]) / 2 - (pts[39, 0] + pts[42, 0]) / 2  # noqa: E731
    nose_y = lambda pts: (pts[31, 1] + pts[35, 1]) / 2 - (pts[36, 1] + pts[45, 1]) / 2  # noqa: E731
    assert nose_x(project_model(20, 0, 0)) > nose_x(front) + 1
    assert nose_y(project_model(0, 20, 0)) < nose_y(front) - 1
    tilted = project_model(0, 0, 15)
    assert tilted[45, 1] > tilted[36, 1]  # the image-right eye corner is lower
    r = rotation_matrix(12, -7, 3)
    assert angles(r) == pytest.approx((12, -7, 3))


def test_noisy_profiles_are_not_frontal_and_noisy_frontal_faces_are():
    rng = np.random.default_rng(1)
    tol = PoseTolerance()
    for yaw in (-75, -50, 50, 75):
        pts = project_model(yaw, 0, 0) + rng.normal(0, 1.5, (68, 2))
        assert not tol.is_frontal(estimate_pose(pts, 640, 480))
    for yaw in (-10, 0, 10):
        pts = project_model(yaw, 5, -5) + rng.normal(0, 1.5, (68, 2))
        assert tol.is_frontal(estimate_pose(pts, 640, 480))


def test_tolerance_names_each_exceeded_axis():
    tol = PoseTolerance(20, 20, 20)
    assert tol.is_frontal(estimate_pose(project_model(10, 5, 5), 640, 480))
    violations = tol.violations(estimate_pose(project_model(45, 0, 30), 640, 480))
    assert [v.split()[0] for v in violations] == ["yaw", "roll"]


@pytest.mark.parametrize("rel", ["test_images/obama3.jpg", "examples/obama-720p.jpg"])
def test_standing_portraits_are_frontal(dlib_verifier, faces, rel):
    """Issue 11: these near-frontal portraits read pitch +31.5 with the five-point estimate."""
    result = dlib_verifier.analyze(decode_file(faces / rel), "image_a", AnalysisOptions())
    assert result.frontal and abs(result.pose.pitch) < 25 and abs(result.pose.yaw) < 15


@pytest.mark.parametrize("angle", [-20, 10])
def test_roll_follows_an_in_plane_rotation(dlib_verifier, faces, angle):
    from bio_face_verify.bench_pose import rotate

    rgb = decode_file(faces / "examples" / "obama-480p.jpg")
    base = dlib_verifier.analyze(rgb, "image_a", OPTS).pose.roll
    turned = dlib_verifier.analyze(rotate(rgb, angle), "image_a", OPTS).pose.roll
    assert turned == pytest.approx(base - angle, abs=5)


def test_a_strongly_turned_face_is_refused(dlib_verifier, faces):
    from bio_face_verify.bench_pose import turn

    rgb = decode_file(faces / "examples" / "obama-480p.jpg")
    box = dlib_verifier.analyze(rgb, "image_a", OPTS).face.box
    with pytest.raises(FaceImageError) as err:
        dlib_verifier.analyze(turn(rgb, box, 75), "image_a", AnalysisOptions())
    assert err.value.code in ("non_frontal", "no_face")


def test_score_is_a_documented_function_of_distance():
    """dlib: the platform's fitted mapping (0.5 at its midpoint); FaceNet: 0.5 at its threshold."""
    assert DLIB_SPEC.score(DLIB_SPEC.calibration.midpoint) == pytest.approx(0.5)
    assert DLIB_SPEC.calibration.fitted_on == ["faces/face_recognition"] and 0.4 < DLIB_SPEC.calibration.midpoint < 0.7
    assert FACENET_SPEC.score(FACENET_SPEC.threshold) == pytest.approx(0.5)
    for spec in (DLIB_SPEC, FACENET_SPEC):
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
    assert get_verifier("auto").spec.name == "dlib_resnet_v1"  # absent: dlib
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
