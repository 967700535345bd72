"""What one fingerprint process holds besides the shared runtime: the loaded models and the gallery cache."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.enhance import EnhanceMethods
from bio_fingerprint.engine.enhance import load as load_enhancement
from bio_fingerprint.engine.pipeline import Processed, process
from bio_fingerprint.exceptions import InvalidEnhancement, InvalidSteps
from bio_fingerprint.service.gallery import Gallery, ShardGallery
from bio_fingerprint.settings import FingerprintSettings
from bio_shared.gallery_cache import GalleryCache
from bio_shared.inference import timed_inference
from bio_shared.runtime import ServiceRuntime

if TYPE_CHECKING:
    from bio_fingerprint.engine.classifier import DistortionClassifier

NAME, PREFIX = "fingerprint", "/api/v1/fingerprint"
_TINY = np.array([[10, 10, 0, 1, 50], [40, 10, 1, 1, 50], [10, 40, 2, 2, 50], [40, 40, 3, 1, 50]], np.float32)


class Models:
    """The engine, loaded once per process: enhancement, minutiae extractor, matcher, distortion CNN."""

    def __init__(self, settings: FingerprintSettings) -> None:
        self.settings = settings
        self._classifier: DistortionClassifier | None = None
        self._lock = threading.Lock()

    @property
    def extractor(self) -> str:
        return self.settings.extractor

    def methods(self, preset: str | None) -> EnhanceMethods:
        try:
            return EnhanceMethods.preset(preset or self.settings.enhancement)
        except ValueError as exc:
            raise InvalidEnhancement(str(exc)) from exc

    def load(self) -> None:
        load_enhancement(self.methods(None))
        if self.extractor == "leader":
            from bio_fingerprint.engine.enhance import leader_minutiae

            tiny = np.full((96, 96), 200, np.uint8)
            tiny[::9] = 40
            leader_minutiae(tiny)  # builds the LEADER network once per process
        matcher.score(_TINY, _TINY)  # compile or load the numba cache
        if self.settings.load_classifier:
            self.classifier()

    def classifier(self) -> DistortionClassifier:
        with self._lock:
            if self._classifier is None:
                from bio_fingerprint.engine.classifier import DistortionClassifier

                self._classifier = DistortionClassifier()
            return self._classifier

    def process(self, gray: np.ndarray, steps: list[dict] | None, preset: str | None, dpi: int = 500,
                enhance_ridges: bool = True) -> Processed:
        try:
            with timed_inference("fingerprint", f"enhance+{self.extractor}"):
                return process(gray, steps, self.methods(preset), dpi, self.extractor, enhance_ridges)
        except ValueError as exc:
            raise InvalidSteps(str(exc)) from exc


@dataclass
class FingerprintState:
    models: Models
    galleries: GalleryCache[Gallery] = field(default_factory=lambda: GalleryCache("templates", service=NAME))
    shards: GalleryCache[ShardGallery] = field(default_factory=lambda: GalleryCache("shards", service=NAME))


FingerprintRuntime = ServiceRuntime[FingerprintState, FingerprintSettings]


def attach_state(rt: ServiceRuntime) -> FingerprintState:
    rt.state = FingerprintState(Models(rt.settings))  # type: ignore[arg-type]
    return rt.state


def state_of(rt: ServiceRuntime) -> FingerprintState:
    return rt.state if isinstance(rt.state, FingerprintState) else attach_state(rt)


def settings_of(rt: ServiceRuntime) -> FingerprintSettings:
    return rt.settings  # type: ignore[return-value]
