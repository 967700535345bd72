"""Minutiae arrays and orientation fields <-> database columns."""

from __future__ import annotations

import numpy as np

from bio_fingerprint.engine import orientation_field
from bio_fingerprint.engine.template import Template
from bio_fingerprint.models import FingerprintOutput, FingerprintTemplate


def pack(m: np.ndarray) -> bytes:
    return np.ascontiguousarray(m, np.float32).tobytes()


def unpack(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.float32).reshape(-1, 5).copy()


def pack_field(field: np.ndarray) -> bytes | None:
    return field.tobytes() if field.size else None


def unpack_field(b: bytes | None) -> np.ndarray:
    return np.frombuffer(b, np.uint8).copy() if b else orientation_field.EMPTY


def template_of(row: FingerprintTemplate) -> Template:
    return Template(unpack(row.minutiae), row.width, row.height, row.dpi, row.finger, row.impression,
                    row.quality, row.algorithm, row.algorithm_version, orientation=unpack_field(row.orientation_field))


def output_template(row: FingerprintOutput) -> Template:
    return Template(unpack(row.minutiae), row.width, row.height, 500, 0, 0, row.quality,
                    orientation=unpack_field(row.orientation_field))
