"""The MTCNN runner: facenet-pytorch's networks and weights without torchvision, checked against the
library's own committed output (its 160 x 160 crops of the same photos)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from bio_face_verify.engine import nets
from bio_face_verify.engine.mtcnn import MTCNN, extract_face, nms
from bio_testing.shared import decode_file


@pytest.fixture(scope="module")
def detector() -> MTCNN:
    return MTCNN()


def test_bundled_weights_load_strictly_into_the_networks():
    data = nets.facenet_pytorch_data_dir()
    for net, name in ((nets.PNet(), "pnet"), (nets.RNet(), "rnet"), (nets.ONet(), "onet")):
        state = torch.load(data / f"{name}.pt", weights_only=True)
        assert set(state) == set(net.state_dict())
        nets.load_state(net, data / f"{name}.pt")  # strict: raises on any missing key or shape
        assert not net.training


def test_detection_imports_neither_torchvision_nor_the_facenet_package(face_data):
    code = ("import sys, numpy as np; from PIL import Image; from bio_face_verify.engine.mtcnn import MTCNN; "
            f"rgb = np.asarray(Image.open({str(face_data / 'openface' / 'adams.jpg')!r}).convert('RGB')); "
            "assert len(MTCNN().detect(rgb)) >= 1; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'facenet_pytorch', 'requests')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _reference_nms(boxes, scores, thr):
    """Textbook greedy NMS on IoU (the torchvision definition)."""
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            xx1, yy1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            xx2, yy2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0, xx2 - xx1) * max(0, yy2 - yy1)
            union = ((boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
                     + (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1]) - inter)
            if inter / union <= thr:
                rest.append(j)
        order = rest
    return keep


@pytest.mark.parametrize("seed", range(5))
def test_nms_equals_the_textbook_definition(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 100, (60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (60, 2))], axis=1)
    scores = rng.uniform(0, 1, 60)
    for thr in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, thr).tolist() == _reference_nms(boxes, scores, thr)
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


CROPPED = ["kate_siegel", "shea_whigham", "paul_rudd", "angelina_jolie"]


def _ncc(x: np.ndarray, y: np.ndarray) -> float:
    a, b = x - x.mean(), y - y.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.mark.parametrize("name", CROPPED)
def test_face_crop_matches_facenet_pytorchs_committed_crop(detector, face_data, name):
    """facenet-pytorch's repository ships the 160 x 160 crops its MTCNN made of these photos: ours must
    show the same region (normalised cross-correlation of the gray crops, far above any other person's
    crop; colours differ with the saving pipeline)."""
    rgb = decode_file(face_data / "facenet-pytorch" / "test_images" / f"{name}.jpg")
    face = max(detector.detect(rgb), key=lambda f: f.area)
    assert face.confidence > 0.99
    ours = extract_face(rgb, face.box).astype(np.float64).mean(axis=2)
    refs = {n: decode_file(face_data / "facenet-pytorch" / "test_images_aligned" / f"{n}.png").astype(np.float64).mean(2)
            for n in CROPPED}
    own = _ncc(ours, refs[name])
    assert own > 0.75, own
    assert all(own > _ncc(ours, ref) + 0.15 for n, ref in refs.items() if n != name)
    # and the landmarks sit where a face has them: eyes above the nose above the mouth
    lm = face.landmarks
    assert lm[0, 1] < lm[2, 1] < lm[3, 1] and lm[1, 1] < lm[2, 1] < lm[4, 1]
    assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]


def test_every_face_of_a_group_photo_is_found(detector, face_data):
    assert len([f for f in detector.detect(decode_file(face_data / "openface" / "longoria-cooper.jpg"))
                if f.confidence > 0.9]) == 2


def test_no_face_in_a_synthetic_texture(detector):
    rng = np.random.default_rng(1)
    assert [f for f in detector.detect(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) if f.confidence > 0.9] == []


def test_refuses_anything_but_rgb(detector):
    with pytest.raises(ValueError, match="RGB"):
        detector.detect(np.zeros((64, 64), np.uint8))
