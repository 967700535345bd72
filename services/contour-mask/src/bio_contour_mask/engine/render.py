"""Outputs: SVG (one <path> per region), colour-coded PNG, per-region masks and JSON polygons; and an SVG
path parser + rasteriser so tests and the benchmark can check an SVG without a browser."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import cv2
import numpy as np

from bio_contour_mask.engine.contours import (
    Region,
    fill_box,
    flatten_segments,
    rasterise_polylines,
    region_path,
    region_polylines,
)

SVG_NS = "http://www.w3.org/2000/svg"
STYLES = ("filled", "outline", "mask")

# Stable colours by region name (what a viewer expects from one request to the next).
PALETTE: dict[str, tuple[int, int, int]] = {
    "face_oval": (255, 204, 153), "skin": (204, 0, 0), "nose": (76, 153, 0), "glasses": (204, 204, 0),
    "left_eye": (51, 51, 255), "right_eye": (204, 0, 204), "left_eyebrow": (0, 255, 255),
    "right_eyebrow": (255, 204, 204), "left_ear": (102, 51, 0), "right_ear": (255, 0, 0), "ears": (153, 76, 0),
    "inner_mouth": (102, 204, 0), "upper_lip": (255, 255, 0), "lower_lip": (0, 0, 153), "mouth": (255, 128, 0),
    "hair": (0, 0, 204), "hat": (255, 51, 153), "earring": (0, 204, 204), "necklace": (0, 51, 0),
    "neck": (255, 153, 51), "cloth": (0, 204, 0), "left_iris": (0, 102, 255), "right_iris": (153, 0, 255),
}
# Drawing order of the colour-coded PNG and the SVG: large regions first, small features on top.
Z_ORDER = ("cloth", "neck", "necklace", "hair", "hat", "face_oval", "skin", "ears", "left_ear", "right_ear",
           "earring", "nose", "mouth", "upper_lip", "lower_lip", "inner_mouth", "left_eyebrow", "right_eyebrow",
           "left_eye", "right_eye", "left_iris", "right_iris", "glasses")
GROUPS = {"left_eye": "eye", "right_eye": "eye", "left_eyebrow": "eyebrow", "right_eyebrow": "eyebrow",
          "upper_lip": "lip", "lower_lip": "lip", "left_ear": "ear", "right_ear": "ear", "ears": "ear",
          "left_iris": "iris", "right_iris": "iris", "mouth": "mouth", "inner_mouth": "mouth"}


def colour(name: str) -> tuple[int, int, int]:
    if name in PALETTE:
        return PALETTE[name]
    h = sum(ord(c) * 31**i for i, c in enumerate(name)) & 0xFFFFFF
    return (h >> 16) & 255, (h >> 8) & 255, h & 255


def ordered(regions: list[Region]) -> list[Region]:
    rank = {n: i for i, n in enumerate(Z_ORDER)}
    return sorted(regions, key=lambda r: (rank.get(r.name, len(rank)), r.name))


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def render_svg(regions: list[Region], width: int, height: int, smoothing: float, style: str = "filled",
               space: str = "aligned") -> str:
    """One <path id=NAME class="region GROUP NAME source-SOURCE"> per region, even-odd fill (holes stay
    holes), viewBox = the output space in pixels. Styles: filled (translucent fills, default), outline
    (strokes only), mask (white on black)."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}")
    root = ET.Element("svg", {"xmlns": SVG_NS, "version": "1.1", "viewBox": f"0 0 {width} {height}",
                              "width": str(width), "height": str(height), "data-space": space})
    ET.SubElement(root, "title").text = "facial region contours"
    css = [".region{fill-rule:evenodd}"]
    if style == "filled":
        css.append(".region{fill-opacity:0.45;stroke-width:1;stroke-opacity:0.9}")
    elif style == "outline":
        css.append(".region{fill:none;stroke-width:1.5}")
    else:
        css.append(".region{fill:#ffffff;stroke:none}")
    for r in ordered(regions):
        if style != "mask":
            c = _hex(colour(r.name))
            css.append(f"#{r.name}{{{'' if style == 'outline' else f'fill:{c};'}stroke:{c}}}")
    ET.SubElement(root, "style").text = "\n".join(css)
    if style == "mask":
        ET.SubElement(root, "rect", {"width": str(width), "height": str(height), "fill": "#000000"})
    g = ET.SubElement(root, "g", {"id": "regions"})
    for r in ordered(regions):
        d = region_path(r, smoothing)
        if not d:
            continue
        cls = " ".join(dict.fromkeys(["region", GROUPS.get(r.name, r.name), r.name, f"source-{r.source}"]))
        attrs = {"id": r.name, "class": cls, "d": d, "fill-rule": "evenodd"}
        if r.labels:
            attrs["data-labels"] = " ".join(r.labels)
        ET.SubElement(g, "path", attrs)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def colour_mask(regions: list[Region], width: int, height: int, smoothing: float) -> np.ndarray:
    """RGBA image: each region painted in its colour (later regions of the z-order on top), transparent
    background."""
    out = np.zeros((height, width, 4), np.uint8)
    for r in ordered(regions):
        box = fill_box(region_polylines(r, smoothing), width, height)
        if box is not None:
            crop, r0, c0 = box
            out[r0:r0 + crop.shape[0], c0:c0 + crop.shape[1]][crop] = (*colour(r.name), 255)
    return out


def encode_png(pixels: np.ndarray) -> bytes:
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    elif pixels.ndim == 3:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    else:
        bgr = pixels
    ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def region_polygons(regions: list[Region]) -> list[dict[str, Any]]:
    """JSON polygons: per region a list of {outer: [[x, y], ...], holes: [[[x, y], ...], ...]}."""
    out = []
    for r in regions:
        polys: list[dict[str, Any]] = []
        for ring in r.rings:
            pts = np.round(ring.points, 2).tolist()
            if ring.hole and polys:
                polys[-1]["holes"].append(pts)
            elif not ring.hole:
                polys.append({"outer": pts, "holes": []})
        out.append({"name": r.name, "source": r.source, "labels": r.labels, "polygons": polys})
    return out


# -- parsing an SVG back (tests, benchmark, clients without a browser) -----------------------------------
_TOKEN = re.compile(r"[MmLlCcZz]|-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def parse_path(d: str, steps: int = 8) -> list[np.ndarray]:
    """Closed polylines of an SVG path using absolute M, L, C and Z (what render_svg writes)."""
    tokens = _TOKEN.findall(d)
    polys: list[np.ndarray] = []
    current: list[np.ndarray] = []
    pos = np.zeros(2)
    cmd = None
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.isalpha():
            cmd = t
            i += 1
            if cmd in "Zz":
                if current:
                    polys.append(np.vstack(current))
                current = []
            continue
        nums = tokens[i:i + (6 if cmd == "C" else 2)]
        vals = np.array([float(v) for v in nums])
        if cmd == "M":
            if current:
                polys.append(np.vstack(current))
            pos = vals[:2]
            current = [pos[None, :]]
            cmd = "L"
            i += 2
        elif cmd == "L":
            pos = vals[:2]
            current.append(pos[None, :])
            i += 2
        elif cmd == "C":
            seg = np.vstack([pos, vals.reshape(3, 2)])[None]
            pts = flatten_segments(seg, steps)
            current.append(np.vstack([pts[1:], vals[4:6][None, :]]))
            pos = vals[4:6]
            i += 6
        else:
            raise ValueError(f"unsupported path command {cmd!r}")
    if current:
        polys.append(np.vstack(current))
    return polys


def parse_svg(svg: str | bytes) -> tuple[tuple[float, float, float, float], dict[str, dict[str, Any]]]:
    """viewBox and {id: {"class": ..., "d": ...}} of every <path> of an SVG document."""
    root = ET.fromstring(svg)
    vb = tuple(float(v) for v in root.attrib["viewBox"].split())
    paths = {}
    for el in root.iter(f"{{{SVG_NS}}}path"):
        paths[el.attrib["id"]] = {"class": el.attrib.get("class", ""), "d": el.attrib.get("d", "")}
    return vb, paths  # type: ignore[return-value]


def rasterise_svg(svg: str | bytes, width: int | None = None, height: int | None = None) -> dict[str, np.ndarray]:
    """Every path of the SVG filled (even-odd) into a 0/1 mask of the viewBox size (or width x height)."""
    (x0, y0, vw, vh), paths = parse_svg(svg)
    w, h = width or int(round(vw)), height or int(round(vh))
    sx, sy = w / vw, h / vh
    out = {}
    for name, p in paths.items():
        polys = [(poly - [x0, y0]) * [sx, sy] for poly in parse_path(p["d"])]
        out[name] = rasterise_polylines(polys, w, h)
    return out
