"""Contours: binary masks to rings (outer boundaries with their holes), rings to smooth cubic Bezier paths,
and paths back to pixels (the rasteriser the tests and the benchmark use).

Coordinates are SVG user units of the output space: x right, y down, (0, 0) the top-left corner of the
top-left pixel, so pixel (col, row) covers [col, col+1] x [row, row+1] and its centre is (col+0.5, row+0.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Ring:
    points: np.ndarray  # Kx2 float64, the vertices the smooth curve passes through
    hole: bool = False


@dataclass
class Region:
    name: str
    source: str  # "map" or "landmarks"
    rings: list[Ring] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # the map classes it was made of

    def transformed(self, matrix: np.ndarray) -> Region:
        a, t = matrix[:, :2], matrix[:, 2]
        return Region(self.name, self.source, [Ring(r.points @ a.T + t, r.hole) for r in self.rings], self.labels)


def _signed_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def offset_ring(pts: np.ndarray, distance: float, outward: bool) -> np.ndarray:
    """Move each vertex by ``distance`` along the bisector of its edges' normals (outward or inward)."""
    if len(pts) < 3 or distance == 0:
        return pts
    sign = 1.0 if _signed_area(pts) > 0 else -1.0
    if not outward:
        sign = -sign
    prev_edge = pts - np.roll(pts, 1, axis=0)
    next_edge = np.roll(pts, -1, axis=0) - pts

    def normals(e: np.ndarray) -> np.ndarray:
        n = np.stack([e[:, 1], -e[:, 0]], axis=1)
        return np.asarray(n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9))

    n = normals(prev_edge) + normals(next_edge)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    n = n / np.maximum(norm, 1e-9)
    # miter length 1/cos(half angle), limited so sharp spikes do not shoot out
    cos_half = np.clip(norm / 2.0, 0.5, 1.0)
    return np.asarray(pts + sign * distance * n / cos_half)


def mask_rings(mask: np.ndarray, *, min_area: float, hole_min_area: float, epsilon: float,
               close_px: int = 0, open_px: int = 0, origin: tuple[int, int] = (0, 0)) -> list[Ring]:
    """Rings of one binary mask: morphological clean-up (close, then open), external boundaries with their
    holes (RETR_CCOMP), specks under ``min_area`` px dropped, each ring simplified (Douglas-Peucker,
    ``epsilon`` px) and moved half a pixel out from the pixel centres to the pixel edges."""
    m: np.ndarray = (mask > 0).astype(np.uint8)
    if close_px > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close_px, close_px)))
    if open_px > 1:
        opened = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (open_px, open_px)))
        if opened.any():  # a region thinner than the kernel everywhere is kept as it is
            m = opened
    contours, hierarchy = cv2.findContours(m, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if hierarchy is None:
        return []
    rings: list[Ring] = []
    hier = hierarchy[0]
    shift = np.array([origin[0] + 0.5, origin[1] + 0.5])
    for i, c in enumerate(contours):
        if hier[i][3] != -1:
            continue  # holes are taken with their parent
        pixels = float(cv2.contourArea(c)) + 0.5 * cv2.arcLength(c, True) + 1.0  # pixel count, about
        if pixels < min_area:
            continue
        rings.append(Ring(_simplify(c, epsilon, outward=True) + shift))
        child = hier[i][2]
        while child != -1:
            h = contours[child]
            if float(cv2.contourArea(h)) - 0.5 * cv2.arcLength(h, True) >= hole_min_area and len(h) >= 4:
                ring = _simplify(h, epsilon, outward=False)
                if len(ring) >= 3:
                    rings.append(Ring(ring + shift, hole=True))
            child = hier[child][0]
    return rings


def _simplify(contour: np.ndarray, epsilon: float, outward: bool) -> np.ndarray:
    pts = contour.reshape(-1, 2).astype(np.float64)
    if len(pts) >= 8 and epsilon > 0:
        approx = cv2.approxPolyDP(contour, epsilon, True).reshape(-1, 2).astype(np.float64)
        if len(approx) >= 3:
            pts = approx
    if len(pts) < 3:  # a 1-2 pixel wide sliver: a small box around it
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    return offset_ring(pts, 0.5, outward)


# -- smooth paths -------------------------------------------------------------------------------------
def bezier_segments(pts: np.ndarray, smoothing: float) -> np.ndarray:
    """Closed Catmull-Rom spline through ``pts`` as cubic Bezier segments (K x 4 x 2: start, c1, c2, end).
    ``smoothing`` scales the tangents: 0 gives the straight polygon, 1 the full Catmull-Rom curve."""
    p0 = np.roll(pts, 1, axis=0)
    p1 = pts
    p2 = np.roll(pts, -1, axis=0)
    p3 = np.roll(pts, -2, axis=0)
    k = smoothing / 6.0
    c1 = p1 + k * (p2 - p0)
    c2 = p2 - k * (p3 - p1)
    return np.stack([p1, c1, c2, p2], axis=1)


def ring_path(pts: np.ndarray, smoothing: float) -> str:
    segs = np.round(bezier_segments(pts, smoothing), 2) + 0.0  # + 0.0: no "-0"
    head = f"M{segs[0, 0, 0]:g} {segs[0, 0, 1]:g} "
    body = " ".join("C{:g} {:g} {:g} {:g} {:g} {:g}".format(*tuple(row)) for row in segs[:, 1:].reshape(-1, 6).tolist())
    return head + body + " Z"


def region_path(region: Region, smoothing: float) -> str:
    return " ".join(ring_path(r.points, smoothing) for r in region.rings if len(r.points) >= 3)


def flatten_segments(segs: np.ndarray, steps: int = 8) -> np.ndarray:
    t = np.linspace(0.0, 1.0, steps, endpoint=False)[None, :, None]
    a, b, c, d = (segs[:, i][:, None, :] for i in range(4))
    mt = 1 - t
    curve = mt**3 * a + 3 * mt**2 * t * b + 3 * mt * t**2 * c + t**3 * d
    return np.asarray(curve.reshape(-1, 2))


def rasterise_polylines(polylines: list[np.ndarray], width: int, height: int) -> np.ndarray:
    """Even-odd fill of closed polylines (SVG coordinates) into a uint8 0/1 mask: a pixel is in when its
    centre is inside (scanlines through the pixel centres, half-open edge rule, so shared edges and
    touching regions never double-count)."""
    out = np.zeros((height, width), np.uint8)
    box = fill_box(polylines, width, height)
    if box is not None:
        crop, r0, c0 = box
        out[r0:r0 + crop.shape[0], c0:c0 + crop.shape[1]] = crop
    return out


def fill_box(polylines: list[np.ndarray], width: int, height: int) -> tuple[np.ndarray, int, int] | None:
    """The even-odd fill of :func:`rasterise_polylines`, as the covered box only: (bool crop, row, col)."""
    polys = [np.asarray(p, np.float64) for p in polylines if len(p) >= 3]
    if not polys:
        return None
    a = np.vstack(polys)
    b = np.vstack([np.roll(p, -1, axis=0) for p in polys])
    x0, y0, x1, y1 = a[:, 0], a[:, 1], b[:, 0], b[:, 1]
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    r0 = np.clip(np.ceil(lo - 0.5), 0, height).astype(np.int64)  # first row whose centre is >= lo
    r1 = np.clip(np.ceil(hi - 0.5), 0, height).astype(np.int64)  # rows with centre < hi
    n = np.maximum(r1 - r0, 0)
    if n.sum() == 0:
        return None
    edge = np.repeat(np.arange(len(n)), n)
    rows = r0[edge] + (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n))
    yc = rows + 0.5
    xs = x0[edge] + (yc - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((xs, rows))
    rows, xs = rows[order], xs[order]
    starts = np.clip(np.ceil(xs[0::2] - 0.5), 0, width).astype(np.int64)
    ends = np.clip(np.ceil(xs[1::2] - 0.5), 0, width).astype(np.int64)
    r = rows[0::2]
    r_lo, r_hi = int(r.min()), int(r.max()) + 1
    c_lo, c_hi = int(starts.min()), int(ends.max())
    if c_hi <= c_lo:
        return None
    diff = np.zeros((r_hi - r_lo, c_hi - c_lo + 1), np.int32)  # only the box the region covers
    np.add.at(diff, (r - r_lo, starts - c_lo), 1)
    np.add.at(diff, (r - r_lo, ends - c_lo), -1)
    return np.cumsum(diff[:, :-1], axis=1) > 0, r_lo, c_lo


def region_polylines(region: Region, smoothing: float) -> list[np.ndarray]:
    return [flatten_segments(bezier_segments(r.points, smoothing)) for r in region.rings if len(r.points) >= 3]


def rasterise_region(region: Region, width: int, height: int, smoothing: float) -> np.ndarray:
    return rasterise_polylines(region_polylines(region, smoothing), width, height)
