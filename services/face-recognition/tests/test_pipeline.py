"""The face pipeline and the search engine on real photos from ../shared/data/faces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bio_face_recognition.engine.gallery import Gallery
from bio_face_recognition.engine.models import EMBEDDING_DIM, load_models
from bio_face_recognition.engine.pipeline import FacePipeline, detection_scale, plain_dlib_faces
from bio_testing.shared import decode_file

OBAMA = ["test_images/obama.jpg", "test_images/obama2.jpg", "examples/obama_small.jpg"]
OTHERS = ["test_images/biden.jpg", "knn_examples/train/alex_lacamoire/img1.jpg", "examples/lin-manuel-miranda.png"]


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline()


@pytest.fixture(scope="module")
def embeddings(pipeline, data_dir):
    root = data_dir / "faces" / "face_recognition"
    out = {}
    for rel in OBAMA + OTHERS:
        (face,) = pipeline.analyze(decode_file(root / rel))
        out[rel] = face.embedding
    return out


def test_embeddings_are_128_float32_and_carry_the_model_identity(embeddings, pipeline):
    for v in embeddings.values():
        assert v.shape == (EMBEDDING_DIM,) and v.dtype == np.float32 and np.isfinite(v).all()
    # the platform's one id for the dlib descriptor, and its one loader (shared with face-verify)
    from bio_shared.model_registry import DLIB_RESNET_V1, load

    assert (pipeline.model_name, pipeline.model_version) == (DLIB_RESNET_V1.name, DLIB_RESNET_V1.version)
    assert pipeline.net is load(DLIB_RESNET_V1)


def test_same_person_is_below_the_threshold_and_different_people_above(embeddings):
    for a, b in itertools.combinations(OBAMA, 2):
        assert np.linalg.norm(embeddings[a] - embeddings[b]) < 0.6, (a, b)
    for a in OBAMA:
        for b in OTHERS:
            assert np.linalg.norm(embeddings[a] - embeddings[b]) > 0.6, (a, b)


def test_service_embeddings_match_the_plain_dlib_pipeline(pipeline, data_dir):
    """Detection runs on a resized photo, landmarks and descriptors on the original: same embedding."""
    rgb = decode_file(data_dir / "faces" / "face_recognition" / "examples" / "obama-720p.jpg")
    (face,) = pipeline.analyze(rgb)
    ((_, plain),) = plain_dlib_faces(rgb)
    assert np.linalg.norm(face.embedding - plain) < 0.05


def test_torch_forward_pass_equals_dlibs_own(pipeline, data_dir):
    """The descriptor runs the dlib ResNet's weights with torch: same numbers as dlib's forward pass."""
    assert pipeline.descriptor == "torch"
    dlib_only = FacePipeline(pipeline.models, descriptor="dlib")
    chips = []
    for rel in ("face_recognition/examples/obama_small.jpg", "openface/clapton-2.jpg", "openface/longoria-cooper.jpg"):
        chips += [f.chip for f in pipeline.analyze(decode_file(data_dir / "faces" / rel), embed=False)]
    assert len(chips) == 4
    ours, theirs = pipeline.embed_chips(np.stack(chips)), dlib_only.embed_chips(np.stack(chips))
    assert ours.shape == theirs.shape == (4, EMBEDDING_DIM) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-4


@pytest.mark.parametrize("rel,count", [("face_recognition/knn_examples/test/obama_and_biden.jpg", 3),
                                       ("face_recognition/knn_examples/test/kit_with_rose.jpg", 2),
                                       ("face_recognition/examples/two_people.jpg", 2),
                                       ("openface/longoria-cooper.jpg", 2),
                                       ("facenet-pytorch/multiface.jpg", 6)])
def test_multi_face_photos_find_every_face(pipeline, data_dir, rel, count):
    rgb = decode_file(data_dir / "faces" / rel)
    boxes = pipeline.detect(rgb)
    plain = load_models().hog(rgb, 1)  # what the plain pipeline (one upsampling) finds
    assert len(boxes) == len(plain) == count
    h, w = rgb.shape[:2]
    for (left, top, right, bottom), _ in boxes:
        assert -w * 0.1 < left < right < w * 1.1 and -h * 0.1 < top < bottom < h * 1.1


def test_every_face_of_a_multi_face_photo_is_recognised(pipeline, data_dir, embeddings):
    rgb = decode_file(data_dir / "faces" / "face_recognition" / "knn_examples" / "test" / "obama_and_biden.jpg")
    faces = pipeline.analyze(rgb)
    obama = min(np.linalg.norm(f.embedding - embeddings["test_images/obama.jpg"]) for f in faces)
    biden = min(np.linalg.norm(f.embedding - embeddings["test_images/biden.jpg"]) for f in faces)
    assert obama < 0.6 and biden < 0.6


def test_32bit_and_alpha_pngs_decode_and_find_one_face(pipeline, data_dir):
    root = data_dir / "faces" / "face_recognition"
    for rel in ("test_images/32bit.png", "examples/lin-manuel-miranda.png"):
        rgb = decode_file(root / rel)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        faces = pipeline.analyze(rgb)
        assert len(faces) == 1, rel
    (face,) = pipeline.analyze(decode_file(root / "test_images/32bit.png"))
    assert abs(face.box[1] - 290) < 30 and abs(face.box[3] - 558) < 30  # where dlib's own test expects it


def test_68_point_alignment_and_the_cnn_detector(pipeline, data_dir, embeddings):
    rgb = decode_file(data_dir / "faces" / "face_recognition" / "examples" / "obama_small.jpg")
    (f68,) = pipeline.analyze(rgb, landmarks=68)
    assert f68.landmarks.shape == (68, 2)
    assert np.linalg.norm(f68.embedding - embeddings["examples/obama_small.jpg"]) < 0.15
    (cnn,) = pipeline.analyze(rgb, detector="cnn")
    assert np.linalg.norm(cnn.embedding - embeddings["test_images/obama.jpg"]) < 0.6
    with pytest.raises(ValueError):
        pipeline.detect(rgb, detector="sift")  # type: ignore[arg-type]


def test_blurred_face_scores_far_lower_sharpness(pipeline, data_dir):
    import cv2

    rgb = decode_file(data_dir / "faces" / "face_recognition" / "test_images" / "obama.jpg")
    (face,) = pipeline.analyze(rgb)
    blurred = pipeline.describe(cv2.GaussianBlur(rgb, (0, 0), 6), face.box)
    assert face.sharpness > 50 > 12 > blurred.sharpness


def test_photo_without_a_face_has_none(pipeline):
    rng = np.random.default_rng(0)
    assert pipeline.analyze(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)) == []
    with pytest.raises(ValueError):
        pipeline.analyze(np.zeros((10, 10), np.uint8))


def test_detection_scale_keeps_the_budget_and_never_exceeds_plain_upsampling():
    assert detection_scale(1000, 1000, 1_000_000) == pytest.approx(1.0)
    assert detection_scale(2000, 2000, 1_000_000) == pytest.approx(0.5)
    assert detection_scale(240, 320, 1_000_000) == 2.0  # small photos: like one upsampling
    assert detection_scale(2000, 2000, 1_000_000, min_face_px=40) == 2.0
    assert detection_scale(2000, 2000, 1_000_000, min_face_px=160) == pytest.approx(0.5)


# -- search ----------------------------------------------------------------------------------------
def test_gallery_search_is_exact_against_brute_force():
    rng = np.random.default_rng(1)
    matrix = rng.normal(0, 0.1, (500, 128)).astype(np.float32)
    people = [f"p{i % 170:03d}" for i in range(500)]
    ids = [f"e{i}" for i in range(500)]
    g = Gallery(people, ids, matrix)
    assert g.person_count == 170 and len(g) == 500
    for _ in range(5):
        q = rng.normal(0, 0.1, 128).astype(np.float32)
        d = np.linalg.norm(matrix - q, axis=1)
        best = {}
        for p, e, dist in zip(people, ids, d, strict=True):
            if p not in best or dist < best[p][0]:
                best[p] = (dist, e)
        expected = sorted(best.items(), key=lambda kv: kv[1][0])[:7]
        got = g.search(q, k=7)
        assert [c.person_id for c in got] == [p for p, _ in expected]
        assert [c.embedding_id for c in got] == [v[1] for _, v in expected]
        assert np.allclose([c.distance for c in got], [v[0] for _, v in expected], atol=1e-4)
        p0 = got[0].person_id
        assert np.isclose(g.distances_to(q, p0).min(), got[0].distance, atol=1e-4)


def test_empty_gallery_and_k_larger_than_it():
    assert Gallery([], [], np.zeros((0, 128), np.float32)).search(np.zeros(128, np.float32), 5) == []
    g = Gallery(["a", "b"], ["1", "2"], np.eye(2, 128, dtype=np.float32))
    assert [c.person_id for c in g.search(np.eye(1, 128, dtype=np.float32)[0], 10)] == ["a", "b"]


def test_confidence_is_the_platform_calibration_in_0_1_and_strictly_decreasing(tmp_path):
    """One distance-to-score mapping for the platform (the file face-verify fits), used by this service."""
    from bio_face_recognition.runtime import new_state
    from bio_face_recognition.settings import FaceRecognitionSettings
    from bio_shared.scoring import load_calibration

    cal = load_calibration("dlib_resnet_v1")
    state = new_state(FaceRecognitionSettings(env="test", var_dir=tmp_path))
    d = np.linspace(0, 2, 201)
    c = np.array([state.confidence(x) for x in d])
    assert (c >= 0).all() and (c <= 1).all() and (np.diff(c) < 0).all()
    assert [state.confidence(x) for x in d[::20]] == [cal.score(x) for x in d[::20]]
    assert state.confidence(cal.midpoint) == pytest.approx(0.5) and cal.model == state.model[0]
