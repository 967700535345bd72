"""A throw-away service ("shared_apptest") built from the shared shell alone: build_runtime +
create_service_app on SQLite in the in-process jobs mode, with the normalisation job every service
offers. The bio_shared tests drive it through HTTP."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase

from bio_shared.app import create_service_app
from bio_shared.db import get_engine
from bio_shared.jobs import JobMixin
from bio_shared.runtime import ServiceRuntime, build_runtime
from bio_shared.settings import CommonSettings
from bio_shared.uploads import normalize_router, register_normalize_job

NAME, PREFIX = "shared_apptest", "/api/v1/shared-apptest"


class ShellBase(DeclarativeBase):
    pass


class ShellJob(JobMixin, ShellBase):
    __tablename__ = "shared_apptest_jobs"


def png_of(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def invert(pixels: np.ndarray) -> np.ndarray:
    return 255 - pixels


def shell_runtime(var_dir: Path, secret: str, transform: Callable[[np.ndarray], np.ndarray] = invert,
                  **over: Any) -> ServiceRuntime[Any]:
    values: dict[str, Any] = dict(var_dir=var_dir, env="test", jobs_mode="inprocess", internal_secret=secret,
                                  max_upload_bytes=300_000, job_reap_interval_s=3600, embedded_job_threads=2)
    values.update(over)
    settings = CommonSettings(**values)
    ShellBase.metadata.create_all(get_engine(settings.database_url))
    rt: ServiceRuntime[Any] = build_runtime(NAME, "bio_fingerprint", PREFIX, settings, ShellJob)
    register_normalize_job(rt, transform, "gray")
    return rt


def shell_app(rt: ServiceRuntime[Any]) -> FastAPI:
    return create_service_app(rt, title="Test service", description="bio_shared shell under test",
                              routers=[normalize_router(rt, "inverted")])


def wait_done(client: TestClient, url: str, headers: dict[str, str], timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(url, headers=headers).json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.03)
    raise AssertionError(f"job at {url} did not finish")


def blob_files(rt: ServiceRuntime[Any]) -> list[Path]:
    return sorted(p for p in Path(rt.blobs.root).rglob("*") if p.is_file())


def job_count(rt: ServiceRuntime[Any]) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ShellJob)) or 0)
