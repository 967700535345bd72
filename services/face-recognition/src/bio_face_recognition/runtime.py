"""What a face recognition process holds besides the shared runtime: its models, its gallery cache and its
distance-to-confidence mapping, as one typed object (``face_state(rt)``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import cast

from bio_face_recognition.engine.gallery import confidence
from bio_face_recognition.engine.pipeline import FacePipeline
from bio_face_recognition.service.galleries import EventGalleries
from bio_face_recognition.settings import FaceRecognitionSettings
from bio_shared.runtime import ServiceRuntime

NAME, PREFIX = "face_recognition", "/api/v1/faces"


@dataclass
class FaceState:
    settings: FaceRecognitionSettings
    galleries: EventGalleries
    _pipeline: FacePipeline | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def pipeline(self) -> FacePipeline:
        """The dlib models, loaded on first use (API processes load them at startup)."""
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    self._pipeline = FacePipeline(detect_max_pixels=self.settings.detect_max_pixels,
                                                  descriptor=self.settings.descriptor)
        return self._pipeline

    def confidence(self, distance: float) -> float:
        """The platform's calibrated distance-to-score mapping of the dlib descriptor."""
        return confidence(distance)

    @property
    def model(self) -> tuple[str, str]:
        """The (name, version) stored with every embedding this process makes."""
        return self.pipeline.model_name, self.pipeline.model_version


def new_state(rt: ServiceRuntime) -> FaceState:
    settings = cast(FaceRecognitionSettings, rt.settings)
    return FaceState(settings=settings, galleries=EventGalleries(settings.gallery_cache_bytes, rt.name))


def face_state(rt: ServiceRuntime) -> FaceState:
    return cast(FaceState, rt.state)  # type: ignore[attr-defined]
