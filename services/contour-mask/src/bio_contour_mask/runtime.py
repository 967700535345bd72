"""The contour-mask service's name, prefix and typed per-process state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bio_contour_mask.settings import ContourMaskSettings
from bio_shared.runtime import ServiceRuntime

NAME, PREFIX = "contour_mask", "/api/v1/contours"


@dataclass
class ContourMaskState:
    settings: ContourMaskSettings
    models: Any = field(default=None)  # (HOG face detector, 68-point shape predictor) once loaded


ContourRuntime = ServiceRuntime[ContourMaskState]
