"""Minutiae templates: ISO/IEC 19794-2:2005 records and a JSON descriptor.

ISO 19794-2:2005 finger minutiae record: 24-byte header ("FMR\\0", " 20\\0", record length, capture
equipment, image size, resolution in pixels per cm, number of finger views), per view a 4-byte
header (finger position, view number + impression type, finger quality, minutiae count), 6 bytes
per minutia (type in the top 2 bits of x, y, angle in units of 360/256 degrees counter-clockwise,
quality) and an extended-data block length. Internally angles are atan2(dy, dx) in image
coordinates (y down), so ISO angle = -theta.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bio_fingerprint.engine import orientation_field
from bio_fingerprint.engine.minutiae import BIFURCATION, ENDING, OTHER

ALGORITHM = "bio-fp-leader"
ALGORITHM_VERSION = "1.2"  # 1.2: with the orientation field; 1.1: LEADER minutiae down to confidence 0.25 (1.0: 0.6)
FIELD_AREA = 0x0B10  # ISO 19794-2 extended data type of the orientation field (0x0100-0xFFFF: vendor-defined)
# a minutia whose quality (the extractor's confidence, percent) is at least this is reliable: pyfing's own
# LEADER detection threshold. The quality score counts only those (pipeline.py) and the matcher counts the
# others with a lower weight (matcher.UNRELIABLE_WEIGHT).
RELIABLE_QUALITY = 60
ISO_TYPES = {ENDING: 1, BIFURCATION: 2, OTHER: 0}
TYPE_NAMES = {ENDING: "ending", BIFURCATION: "bifurcation", OTHER: "other"}
NAME_TYPES = {v: k for k, v in TYPE_NAMES.items()}
FINGER_POSITIONS = {
    0: "unknown", 1: "right thumb", 2: "right index", 3: "right middle", 4: "right ring", 5: "right little",
    6: "left thumb", 7: "left index", 8: "left middle", 9: "left ring", 10: "left little",
}


class TemplateFormatError(ValueError):
    pass


@dataclass
class Template:
    minutiae: np.ndarray  # (n, 5) float32: x, y, theta, type, quality 0-100
    width: int
    height: int
    dpi: int = 500
    finger: int = 0
    impression: int = 0
    quality: int = 0
    algorithm: str = ALGORITHM
    version: str = ALGORITHM_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    orientation: np.ndarray = field(default_factory=lambda: orientation_field.EMPTY)  # encoded field, or empty

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "bio-fingerprint-template",
            "algorithm": self.algorithm,
            "algorithm_version": self.version,
            "width": self.width,
            "height": self.height,
            "resolution_dpi": self.dpi,
            "finger_position": self.finger,
            "impression": self.impression,
            "quality": self.quality,
            "minutiae": [
                {"x": round(float(x), 2), "y": round(float(y), 2), "direction": round(float(t), 5),
                 "direction_deg": round(math.degrees(float(t)), 2), "type": TYPE_NAMES.get(int(ty), "other"),
                 "quality": int(q)}
                for x, y, t, ty, q in self.minutiae
            ],
            **({"orientation_field": base64.b64encode(self.orientation.tobytes()).decode()} if self.orientation.size else {}),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Template:
        try:
            rows = []
            for m in doc["minutiae"]:
                ty = NAME_TYPES.get(str(m.get("type", "other")), OTHER)
                rows.append([float(m["x"]), float(m["y"]), float(m["direction"]) % (2 * math.pi), ty,
                             float(m.get("quality", 50))])
            arr = np.asarray(rows, np.float32).reshape(-1, 5)
            w, h = int(doc["width"]), int(doc["height"])
            encoded = doc.get("orientation_field")
            field_bytes = base64.b64decode(encoded, validate=True) if encoded else b""
            orientation = orientation_field.validate(np.frombuffer(field_bytes, np.uint8))
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise TemplateFormatError(f"invalid JSON template: {exc}") from exc
        if w <= 0 or h <= 0 or len(arr) > 255 or not np.isfinite(arr).all():
            raise TemplateFormatError("invalid JSON template: bad size, too many minutiae or non-finite values")
        if len(arr) and (arr[:, :2].min() < 0 or arr[:, :2].max() > 0x3FFF):
            raise TemplateFormatError("invalid JSON template: minutia coordinates outside 0-16383 px (the ISO range)")
        return cls(arr, w, h, int(doc.get("resolution_dpi", 500)), int(doc.get("finger_position", 0)),
                   int(doc.get("impression", 0)), int(doc.get("quality", 0)),
                   str(doc.get("algorithm", ALGORITHM)), str(doc.get("algorithm_version", ALGORITHM_VERSION)),
                   orientation=orientation)

    def to_iso(self) -> bytes:
        ppcm = int(round(self.dpi / 2.54))
        mins = self.minutiae[:255]
        body = bytearray()
        body += struct.pack(">BBBB", self.finger & 0xFF, (0 << 4) | (self.impression & 0x0F),
                            max(0, min(100, int(self.quality))), len(mins))
        for x, y, t, ty, q in mins:
            xi = int(round(min(max(x, 0), 0x3FFF)))
            yi = int(round(min(max(y, 0), 0x3FFF)))
            iso_angle = (-float(t)) % (2 * math.pi)
            a = int(round(iso_angle / (2 * math.pi) * 256)) % 256
            body += struct.pack(">HHBB", (ISO_TYPES.get(int(ty), 0) << 14) | xi, yi, a, max(0, min(100, int(q))))
        if self.orientation.size:
            area = struct.pack(">HH", FIELD_AREA, 4 + self.orientation.size) + self.orientation.tobytes()
            body += struct.pack(">H", len(area)) + area
        else:
            body += struct.pack(">H", 0)  # no extended data
        length = 24 + len(body)
        header = b"FMR\x00" + b" 20\x00" + struct.pack(">IHHHHHBB", length, 0, self.width, self.height, ppcm,
                                                         ppcm, 1, 0)
        return header + bytes(body)

    @classmethod
    def from_iso(cls, data: bytes, view: int = 0) -> Template:
        if len(data) < 28 or data[:4] != b"FMR\x00":
            raise TemplateFormatError("not an ISO/IEC 19794-2 finger minutiae record (magic 'FMR')")
        if data[4:8] != b" 20\x00":
            raise TemplateFormatError(f"unsupported ISO 19794-2 version {data[4:8]!r} (2005 edition ' 20')")
        length, _equip, w, h, xres, _yres, nviews, _ = struct.unpack(">IHHHHHBB", data[8:24])
        if length < 26 or length > len(data) + 8:  # some writers pad or under-report; be lenient
            raise TemplateFormatError(f"record length {length} does not fit the data ({len(data)} bytes)")
        if nviews < 1:
            raise TemplateFormatError("record has no finger view")
        off = 24
        for v in range(nviews):
            if off + 4 > len(data):
                raise TemplateFormatError("record truncated in a finger view header")
            pos, view_imp, fq, n = struct.unpack(">BBBB", data[off:off + 4])
            off += 4
            if off + 6 * n > len(data):
                raise TemplateFormatError("record truncated in the minutiae")
            rows = []
            for k in range(n):
                tx, yy, a, q = struct.unpack(">HHBB", data[off + 6 * k: off + 6 * k + 6])
                iso_t = tx >> 14
                ty = {1: ENDING, 2: BIFURCATION}.get(iso_t, OTHER)
                theta = (-(a * 2 * math.pi / 256)) % (2 * math.pi)
                rows.append([tx & 0x3FFF, yy & 0x3FFF, theta, ty, q])
            off += 6 * n
            orientation = orientation_field.EMPTY
            if off + 2 <= len(data):
                (ext,) = struct.unpack(">H", data[off:off + 2])
                orientation = _field_area(data[off + 2:off + 2 + ext])
                off += 2 + ext
            if v == view:
                dpi = int(round(xres * 2.54)) if xres else 500
                return cls(np.asarray(rows, np.float32).reshape(-1, 5), int(w), int(h), dpi, int(pos),
                           int(view_imp & 0x0F), int(fq), algorithm="iso-19794-2", version="2005",
                           orientation=orientation)
        raise TemplateFormatError(f"record has no finger view {view}")


def _field_area(ext: bytes) -> np.ndarray:
    """The orientation field in a view's extended data (areas of type code, length including the 4-byte
    header, data), or an empty one; other vendors' areas are skipped (and a layout that does not parse as
    such areas, which some writers use, ends the search)."""
    off = 0
    while off + 4 <= len(ext):
        kind, length = struct.unpack(">HH", ext[off:off + 4])
        if length < 4 or off + length > len(ext):
            break
        if kind == FIELD_AREA:
            try:
                return orientation_field.validate(np.frombuffer(ext[off + 4:off + length], np.uint8))
            except ValueError as exc:
                raise TemplateFormatError(f"ISO record: {exc}") from exc
        off += length
    return orientation_field.EMPTY


def field_at_500dpi(t: Template) -> np.ndarray:
    """The template's orientation field as the matcher reads it beside resample_to_500dpi's minutiae."""
    return orientation_field.scaled(t.orientation, t.dpi)


def resample_to_500dpi(t: Template) -> np.ndarray:
    """Minutiae coordinates scaled to 500 dpi (the matcher's tolerances are in 500 dpi pixels)."""
    m = t.minutiae.copy()
    if t.dpi and t.dpi != 500:
        m[:, :2] *= 500.0 / t.dpi
    return m
