"""What a face recognition process holds besides the shared runtime: its models, its gallery cache (exact
matrices and approximate indexes) and the
platform's distance-to-confidence mapping, as one typed object (``rt.state``, read with ``face_state``)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import cast

from bio_face_recognition.engine.ann_index import AnnSettings
from bio_face_recognition.engine.models import MODEL_ID
from bio_face_recognition.engine.pipeline import FacePipeline
from bio_face_recognition.service.galleries import EventGalleries
from bio_face_recognition.settings import FaceRecognitionSettings
from bio_shared.runtime import ServiceRuntime
from bio_shared.scoring import DistanceCalibration, load_calibration

NAME, PREFIX = "face_recognition", "/api/v1/faces"


@dataclass
class FaceState:
    settings: FaceRecognitionSettings
    galleries: EventGalleries
    calibration: DistanceCalibration
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

    @property
    def model(self) -> tuple[str, str]:
        """The model id stored with every embedding (the same weights whichever forward pass runs them)."""
        return MODEL_ID.name, MODEL_ID.version

    def confidence(self, distance: float) -> float:
        """The platform's calibrated score of a descriptor distance (bio_shared/calibration/dlib_resnet_v1.json)."""
        return self.calibration.score(distance)


def new_state(settings: FaceRecognitionSettings) -> FaceState:
    ann = AnnSettings(rerank=settings.ann_rerank, probe_share=settings.ann_probe_share)
    galleries = EventGalleries(settings.gallery_cache_events, NAME, exact_below=settings.exact_search_below,
                               ann_settings=ann, snapshot_every=settings.ann_snapshot_every)
    return FaceState(settings=settings, galleries=galleries, calibration=load_calibration(MODEL_ID.name))


def face_state(rt: ServiceRuntime) -> FaceState:
    return cast(FaceState, rt.state)
