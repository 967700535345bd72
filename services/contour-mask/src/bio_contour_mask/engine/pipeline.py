"""The contour pipeline on numpy arrays: landmarks (given or detected), alignment, regions from the label
map and/or the landmarks, in the aligned crop or the original image space."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from bio_contour_mask.engine import labels as L
from bio_contour_mask.engine.align import Alignment, compose, compute_alignment, scale_matrix, warp_image
from bio_contour_mask.engine.contours import Region, Ring, mask_rings
from bio_contour_mask.engine.detect import detect_landmarks
from bio_contour_mask.engine.errors import InputError
from bio_contour_mask.engine.landmarks import LANDMARK_REGION_NAMES, Landmarks, landmark_rings

ALL_REGION_NAMES = tuple(dict.fromkeys(LANDMARK_REGION_NAMES + L.MAP_REGION_NAMES))
SPACES = ("aligned", "original")


@dataclass(frozen=True)
class Options:
    regions: tuple[str, ...] | None = None  # None: every region the inputs define
    coordinate_space: str = "aligned"
    smoothing: float = 0.5  # 0 = polygons, 1 = full Catmull-Rom curves; also sets the simplification
    aligned_size: int = 512
    margin: float = 0.4  # of the face box, on each side
    label_order: str = "auto"  # auto, face-parsing, celebamask-hq

    def __post_init__(self) -> None:
        if self.coordinate_space not in SPACES:
            raise InputError(f"coordinate_space must be one of {SPACES}", "invalid_options")
        if not 0 <= self.smoothing <= 1:
            raise InputError("smoothing must be between 0 and 1", "invalid_options")
        if self.label_order not in ("auto", *L.ORDERS):
            raise InputError(f"label_order must be auto or one of {tuple(L.ORDERS)}", "invalid_options")
        if self.regions is not None:
            unknown = sorted(set(self.regions) - set(ALL_REGION_NAMES))
            if unknown:
                raise InputError(f"unknown region(s) {unknown}; known regions: {list(ALL_REGION_NAMES)}",
                                 "unknown_region", {"unknown": unknown, "known": list(ALL_REGION_NAMES)})

    @property
    def epsilon(self) -> float:
        """Douglas-Peucker tolerance in output pixels."""
        return 0.3 + 0.9 * self.smoothing


@dataclass
class Result:
    regions: list[Region]
    width: int
    height: int
    alignment: Alignment
    landmarks: Landmarks  # in original image coordinates
    landmarks_source: str  # client, dlib, label_map
    label_order: str | None = None
    order_scores: dict[str, float] | None = None
    missing: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # ms per stage
    aligned_image: np.ndarray | None = None


def _eyes_from_map(labels: np.ndarray, sx: float, sy: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Without a face from dlib: the eyes (classes 4 l_eye and 5 r_eye in both orders) and the skin box."""
    pts = []
    for v in (5, 4):  # subject's right eye, then left
        ys, xs = np.nonzero(labels == v)
        if len(xs) < 3:
            return None
        pts.append(np.array([(xs.mean() + 0.5) * sx, (ys.mean() + 0.5) * sy]))
    ys, xs = np.nonzero(labels == 1)
    box = np.array([[xs.min() * sx, ys.min() * sy], [(xs.max() + 1) * sx, (ys.max() + 1) * sy]])
    return pts[0], pts[1], box


def _pseudo_landmarks(eye_r: np.ndarray, eye_l: np.ndarray) -> Landmarks:
    """68 points that only carry the eye centres (for a result aligned from a label map alone)."""
    pts = np.zeros((68, 2))
    pts[36:42] = eye_r
    pts[42:48] = eye_l
    return Landmarks(pts, "ibug68")


def run(rgb: np.ndarray, landmarks: Landmarks | None, labels: np.ndarray | None, opts: Options,
        want_aligned_image: bool = True) -> Result:
    timings: dict[str, float] = {}
    h, w = rgb.shape[:2]
    t = time.perf_counter()
    source = "client"
    face_box = None
    if landmarks is None:
        landmarks = detect_landmarks(rgb)
        source = "dlib"
        if landmarks is None and labels is not None:
            found = _eyes_from_map(labels, w / labels.shape[1], h / labels.shape[0])
            if found is not None:
                eye_r, eye_l, face_box = found
                landmarks, source = _pseudo_landmarks(eye_r, eye_l), "label_map"
        if landmarks is None:
            raise InputError("no face was found in the image; send a photo with a visible, roughly frontal face, "
                             "or its landmarks", "no_face")
    timings["landmarks"] = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    face_points = face_box if face_box is not None else landmarks.face_points()
    al = compute_alignment(landmarks.right_eye_centre, landmarks.left_eye_centre, face_points,
                           opts.aligned_size, opts.margin)
    if opts.coordinate_space == "aligned":
        out_w = out_h = opts.aligned_size
        to_out = al.matrix
    else:
        out_w, out_h = w, h
        to_out = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    aligned_image = warp_image(rgb, al) if want_aligned_image else None
    timings["align"] = (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    regions: dict[str, Region] = {}
    order = scores = None
    if source != "label_map":
        for name, ring in landmark_rings(landmarks).items():
            regions[name] = Region(name, "landmarks", [Ring(ring @ to_out[:, :2].T + to_out[:, 2])])
    if labels is not None:
        map_to_image = scale_matrix(w / labels.shape[1], h / labels.shape[0])
        map_to_upright = compose(al.matrix, map_to_image)
        if opts.label_order == "auto":
            order, scores = _order_in_image(labels, map_to_image, map_to_upright, landmarks)
        else:
            order = opts.label_order
        map_to_out = compose(to_out, map_to_image)
        px = float(np.sqrt(abs(np.linalg.det(map_to_out[:, :2]))))  # output px per map px
        for region in map_regions(labels, order, opts.epsilon / max(px, 1e-9), opts.regions):
            regions[region.name] = region.transformed(map_to_out)  # the map wins over the landmarks
    rank = {n: i for i, n in enumerate(ALL_REGION_NAMES)}
    wanted = opts.regions if opts.regions is not None else tuple(sorted(regions, key=lambda n: rank.get(n, 999)))
    missing = [n for n in wanted if n not in regions or not regions[n].rings]
    picked = [regions[n] for n in wanted if n in regions and regions[n].rings]
    timings["contours"] = (time.perf_counter() - t) * 1000
    return Result(picked, out_w, out_h, al, landmarks, source, order, scores, missing, timings, aligned_image)


def _order_in_image(labels: np.ndarray, map_to_image: np.ndarray, map_to_upright: np.ndarray,
                    lm: Landmarks) -> tuple[str, dict[str, float]]:
    # eye centres are in image coordinates; detect_order wants them in map coordinates
    inv = np.linalg.inv(map_to_image[:, :2])
    e_r = inv @ (lm.right_eye_centre - map_to_image[:, 2])
    e_l = inv @ (lm.left_eye_centre - map_to_image[:, 2])
    return L.detect_order(labels, map_to_upright, e_r, e_l)


def map_regions(labels: np.ndarray, order: str, epsilon: float, wanted: tuple[str, ...] | None) -> list[Region]:
    """Regions of a label map, in map pixel coordinates: one per class present, plus the unions
    (mouth, face_oval, ears)."""
    names = L.ORDERS[order]
    mh, mw = labels.shape
    k = max(3, int(round(3 * max(mh, mw) / 512)) | 1)
    min_area = max(8.0, 5e-5 * mh * mw)
    counts = np.bincount(labels.ravel(), minlength=L.NUM_CLASSES)
    present = {names[v] for v in np.flatnonzero(counts) if v > 0}
    jobs: list[tuple[str, list[str]]] = []
    for cls in names[1:]:
        if cls in present:
            jobs.append((L.REGION_OF_CLASS[cls], [cls]))
    for region, members in L.UNION_REGIONS.items():
        have = [c for c in members if c in present]
        if have and (len(have) > 1 or region == "mouth"):
            jobs.append((region, have))
    out = []
    for region, classes in jobs:
        if wanted is not None and region not in wanted:
            continue
        values = [names.index(c) for c in classes]
        mask = labels == values[0] if len(values) == 1 else np.isin(labels, values)
        x, y, bw, bh = cv2.boundingRect(mask.astype(np.uint8))
        pad = k + 2
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(mw, x + bw + pad), min(mh, y + bh + pad)
        rings = mask_rings(mask[y0:y1, x0:x1], min_area=min_area, hole_min_area=min_area, epsilon=epsilon,
                           close_px=k, open_px=k, origin=(x0, y0))
        if rings:
            out.append(Region(region, "map", rings, classes))
    return out
