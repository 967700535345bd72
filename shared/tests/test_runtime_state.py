"""ServiceRuntime[S]: the typed per-service state travels with the runtime; images never echo reprs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.orm import DeclarativeBase

from bio_shared.db import dispose_engines
from bio_shared.errors import Unprocessable
from bio_shared.gallery_cache import GalleryCache
from bio_shared.images import _reason, decode_image
from bio_shared.jobs import JobMixin
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.settings import CommonSettings


class Base(DeclarativeBase):
    pass


class StateJob(JobMixin, Base):
    __tablename__ = "state_test_jobs"


@dataclass
class DemoState:
    threshold: float
    cache: GalleryCache[list[float]] = field(default_factory=lambda: GalleryCache("demo"))


def test_build_runtime_carries_a_typed_state(tmp_path: Path) -> None:
    settings = CommonSettings(var_dir=tmp_path, env="test", jobs_mode="inprocess", internal_secret="s" * 40)
    rt: ServiceRuntime[DemoState] = build_runtime("demo", "bio_demo", "/api/v1/demo", settings, StateJob,
                                                  state=DemoState(threshold=0.4))
    try:
        assert rt.state.threshold == 0.4
        assert rt.state.cache.get("a", 1, lambda: [1.0]) == [1.0]
        assert rt.normalize_mode is None  # no normalize job registered
        assert settings.sync_budget_s == 20.0
    finally:
        rt.stop()
        dispose_engines()


def test_error_reasons_hold_no_object_reprs() -> None:
    text = _reason(OSError("cannot identify image file <_io.BytesIO object at 0x7f3a2b1c0d90>"))
    assert "0x" not in text and "BytesIO" not in text and text.startswith("cannot identify image file")
    broken_png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    with pytest.raises(Unprocessable) as exc:
        decode_image(broken_png)
    assert "object at 0x" not in exc.value.message and "object at 0x" not in str(exc.value.details)


class DemoSettings(CommonSettings):
    demo_threshold: float = 0.25


def test_runtime_types_its_settings_too(tmp_path: Path) -> None:
    settings = DemoSettings(var_dir=tmp_path, env="test", jobs_mode="inprocess", internal_secret="s" * 40)
    rt: ServiceRuntime[DemoState, DemoSettings] = build_runtime("demo2", "bio_demo", "/api/v1/demo2", settings,
                                                                StateJob, state=DemoState(threshold=0.1))
    try:
        assert rt.settings.demo_threshold == 0.25 and rt.state.threshold == 0.1
    finally:
        rt.stop()
        dispose_engines()
