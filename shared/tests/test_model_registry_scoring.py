"""Model identity and once-per-process loading; the distance-to-score calibration."""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from pathlib import Path

import pytest

from bio_shared import model_registry
from bio_shared.model_registry import DLIB_RESNET_V1, DLIB_SHAPE_5, DLIB_SHAPE_68, ModelId, dlib_model_path
from bio_shared.scoring import DistanceCalibration, load_calibration


def test_load_runs_the_loader_once_across_threads() -> None:
    mid = ModelId(f"test-{uuid.uuid4().hex}", "1")
    calls: list[int] = []

    def loader() -> object:
        calls.append(1)
        time.sleep(0.05)
        return object()

    model_registry.register(mid, loader)
    model_registry.register(mid, loader)  # the same loader again is harmless
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(model_registry.load(mid))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(g) for g in got}) == 1 and model_registry.is_loaded(mid)
    with pytest.raises(ValueError):
        model_registry.register(mid, lambda: None)
    with pytest.raises(KeyError):
        model_registry.load(ModelId("never-registered", "0"))


def test_dlib_models_have_one_id_and_their_files_exist() -> None:
    assert str(DLIB_RESNET_V1) == "dlib_resnet_v1:1" and DLIB_RESNET_V1.as_dict() == {"name": "dlib_resnet_v1",
                                                                                      "version": "1"}
    assert {DLIB_RESNET_V1, DLIB_SHAPE_68, DLIB_SHAPE_5} <= set(model_registry.registered())
    for mid in (DLIB_RESNET_V1, DLIB_SHAPE_68, DLIB_SHAPE_5):
        assert dlib_model_path(mid).stat().st_size > 1_000_000


def test_dlib_shape_predictor_loads_once() -> None:
    pytest.importorskip("dlib")
    first = model_registry.load(DLIB_SHAPE_5)
    assert model_registry.load(DLIB_SHAPE_5) is first
    assert type(first).__name__ == "shape_predictor"


def test_calibration_maps_distance_to_score(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"model": "m", "slope": 10.0, "midpoint": 0.5, "fitted_on": ["lfw"],
                                "fitted_with": "logistic regression"}))
    cal = DistanceCalibration.from_file(path)
    assert cal.score(0.5) == pytest.approx(0.5)
    assert cal.score(0.3) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert cal.score(0.0) > cal.score(0.4) > cal.score(0.6) > cal.score(10.0) >= 0.0
    assert cal.score(1e9) == 0.0 and cal.score(float("nan")) == 0.0 and cal.score(-1e9) == 1.0
    for p in (0.01, 0.5, 0.9, 0.999):
        assert cal.score(cal.threshold_for(p)) == pytest.approx(p)
    with pytest.raises(ValueError):
        cal.threshold_for(1.0)
    with pytest.raises(ValueError):
        DistanceCalibration.from_dict({"model": "m", "slope": -1, "midpoint": 0})
    with pytest.raises(ValueError):
        DistanceCalibration.from_dict({"model": "m", "slope": 1})
    assert DistanceCalibration.from_dict(cal.to_dict()) == cal


def test_platform_dlib_calibration_ships_with_the_package() -> None:
    cal = load_calibration("dlib_resnet_v1")
    assert cal.model == "dlib_resnet_v1" and 0.3 < cal.midpoint < 0.8
    with pytest.raises(ValueError):
        load_calibration("../secrets")
