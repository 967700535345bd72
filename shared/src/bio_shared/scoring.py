"""Distance-to-score mapping: one logistic per model, fitted on named data and stored as JSON.

``score = 1 / (1 + exp(slope * (d - midpoint)))``: 0.5 at ``midpoint``, strictly decreasing in the
distance for ``slope > 0``. The file records the data it was fitted on (``fitted_on``) and how
(``fitted_with``), so a figure reported with it can say whether it was measured on the same data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DistanceCalibration:
    model: str
    slope: float
    midpoint: float
    fitted_on: list[str] = field(default_factory=list)
    fitted_with: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slope) and self.slope > 0):
            raise ValueError(f"calibration of {self.model}: slope must be a positive number, not {self.slope}")
        if not math.isfinite(self.midpoint):
            raise ValueError(f"calibration of {self.model}: midpoint must be finite")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DistanceCalibration:
        try:
            return cls(model=str(data["model"]), slope=float(data["slope"]), midpoint=float(data["midpoint"]),
                       fitted_on=[str(x) for x in data.get("fitted_on", [])],
                       fitted_with=str(data.get("fitted_with", "")))
        except KeyError as exc:
            raise ValueError(f"calibration file lacks {exc.args[0]!r}") from exc

    @classmethod
    def from_file(cls, path: Path | str) -> DistanceCalibration:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "slope": self.slope, "midpoint": self.midpoint,
                "fitted_on": list(self.fitted_on), "fitted_with": self.fitted_with}

    def score(self, distance: float) -> float:
        """In [0, 1]; 0 for a non-finite distance (no comparison is no match)."""
        d = float(distance)
        if not math.isfinite(d):
            return 0.0
        z = self.slope * (d - self.midpoint)
        if z >= 0:
            e = math.exp(-z) if z < 700 else 0.0
            return e / (1.0 + e)
        return 1.0 / (1.0 + math.exp(z))

    def threshold_for(self, p: float) -> float:
        """The distance whose score is ``p`` (0 < p < 1): a match when ``d <= threshold_for(p)``."""
        if not 0.0 < p < 1.0:
            raise ValueError("p must lie strictly between 0 and 1")
        return self.midpoint + math.log((1.0 - p) / p) / self.slope


@cache
def load_calibration(model: str) -> DistanceCalibration:
    """The platform's calibration of ``model`` (``bio_shared/calibration/<model>.json``)."""
    if not model.replace("_", "").isalnum():
        raise ValueError(f"not a model name: {model!r}")
    text = files("bio_shared").joinpath("calibration", f"{model}.json").read_text()
    calibration = DistanceCalibration.from_dict(json.loads(text))
    if calibration.model != model:
        raise ValueError(f"calibration/{model}.json is for {calibration.model}")
    return calibration
