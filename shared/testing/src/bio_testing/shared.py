"""Helpers for tests of services: what the gateway would send, a started service, and bad images.

Test-only code in the ``bio-testing`` distribution (never part of a runtime image), a package so every
test folder can import it by name (pytest's importlib mode cannot import helpers from conftest files).
It never imports pytest.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from bio_shared.db import migrate
from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity
from bio_shared.images import Mode, decode_image
from bio_shared.runtime import ServiceRuntime
from bio_shared.services import ServiceSpec

FINAL_STATES = ("succeeded", "failed")


def identity_headers(secret: str, account_id: str = "acct-a", role: str = "user", ttl_s: int = 60) -> dict[str, str]:
    return {IDENTITY_HEADER: sign_identity(Identity(account_id, role), secret, ttl_s)}


# -- images -----------------------------------------------------------------------------------------
def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def sample_jpeg(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    """A synthetic RGB photo (gradients plus noise, so it compresses poorly and truncates in its data)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(1, width - 1), y * 255 / max(1, height - 1), (x + y) % 256], axis=2)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG header claiming width x height pixels, with almost no data behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def truncated_jpeg(jpeg: bytes) -> bytes:
    """The first half of a JPEG file: a readable header, then the data stops."""
    return jpeg[: len(jpeg) // 2]


def truncated_png(image: bytes) -> bytes:
    """The image re-encoded as PNG, then cut in half (inside its pixel data)."""
    data = png_bytes(Image.open(io.BytesIO(image)))
    return data[: len(data) // 2]


# -- jobs and storage -------------------------------------------------------------------------------
def wait_for_job(client: TestClient | httpx.Client, status_url: str, headers: dict[str, str],
                 timeout_s: float = 30.0) -> dict[str, Any]:
    """Poll a job's status URL until it is final; fails (AssertionError) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        resp = client.get(status_url, headers=headers)
        assert resp.status_code == 200, resp.text
        job = resp.json()
        if job["status"] in FINAL_STATES:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout_s} s: {job}"
        time.sleep(0.05)


def stored_state(rt: ServiceRuntime[Any]) -> tuple[int, list[Path]]:
    """Rows in the service's jobs table and files in its blob store."""
    with rt.sessions() as s:
        rows = s.scalar(select(func.count()).select_from(rt.jobs.model)) or 0
    return rows, sorted(p for p in Path(rt.blobs.root).rglob("*") if p.is_file())


def assert_nothing_stored(rt: ServiceRuntime[Any]) -> None:
    """No job row and no blob: what a refused request must leave behind."""
    assert stored_state(rt) == (0, [])


# -- a started service ------------------------------------------------------------------------------
def service_settings(spec: ServiceSpec, var_dir: Path, **overrides: Any) -> Any:
    """Settings for tests: SQLite under ``var_dir`` and in-process jobs, whatever BIO_* variables say
    (explicit values win over the environment; a test that sets a variable leaves that key out)."""
    values: dict[str, Any] = dict(env="test", var_dir=var_dir, database_url="", redis_url="", jobs_mode="inprocess")
    return spec.settings(**(values | overrides))


@dataclass
class ServiceClient:
    """A migrated, started service app (lifespan included) and what the gateway would add to calls."""

    spec: ServiceSpec
    client: TestClient

    @property
    def rt(self) -> ServiceRuntime[Any]:
        return self.client.app.state.runtime  # type: ignore[attr-defined]  # a FastAPI app

    @property
    def settings(self) -> Any:
        return self.rt.settings

    @property
    def jobs_url(self) -> str:
        return f"{self.spec.prefix}/jobs"

    @property
    def normalize_url(self) -> str:
        return f"{self.jobs_url}/normalize"

    def auth(self, account_id: str = "acct-a", role: str = "user") -> dict[str, str]:
        """Identity headers as the gateway would send them: ``svc.auth("acct-b", "admin")``."""
        return identity_headers(self.settings.internal_secret, account_id, role)

    def submit(self, data: bytes, name: str = "upload.jpg", account: str = "acct-a") -> httpx.Response:
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return self.client.post(self.normalize_url, files={"file": (name, data, ctype)}, headers=self.auth(account))

    def wait(self, status_url: str, account: str = "acct-a") -> dict[str, Any]:
        return wait_for_job(self.client, status_url, self.auth(account))

    def normalize(self, data: bytes, name: str = "upload.jpg", account: str = "acct-a") -> dict[str, Any]:
        """Submit a normalize job and wait for it; it must succeed."""
        resp = self.submit(data, name, account)
        assert resp.status_code == 202, resp.text
        job = self.wait(resp.json()["status_url"], account)
        assert job["status"] == "succeeded", job
        return job

    def output(self, job: dict[str, Any], account: str = "acct-a") -> Image.Image:
        """The job's PNG, checked against the sha256 of its result."""
        out = self.client.get(job["result"]["output_url"], headers=self.auth(account))
        assert out.status_code == 200 and out.headers["content-type"] == "image/png", out.text
        assert hashlib.sha256(out.content).hexdigest() == job["result"]["sha256"]
        img = Image.open(io.BytesIO(out.content))
        assert img.format == "PNG"
        img.load()
        return img

    def stored(self) -> tuple[int, list[Path]]:
        return stored_state(self.rt)

    def assert_nothing_stored(self, account: str = "acct-a") -> None:
        assert_nothing_stored(self.rt)
        assert self.client.get(self.jobs_url, headers=self.auth(account)).json()["items"] == []


@contextmanager
def service_client(spec: ServiceSpec, var_dir: Path, **overrides: Any) -> Iterator[ServiceClient]:
    """Migrate the service's database and start its app for test settings (see ``service_settings``)."""
    settings = service_settings(spec, var_dir, **overrides)
    migrate(spec.package, settings.database_url)
    with TestClient(spec.create_app(settings)) as client:
        yield ServiceClient(spec, client)


class ServiceStarter:
    """Starts service clients on demand (``start()``, ``start(max_side=512)``) and stops them all on exit;
    the body of a per-folder ``start`` fixture."""

    def __init__(self, spec: ServiceSpec, var_dir: Path) -> None:
        self.spec = spec
        self.var_dir = var_dir
        self._stack = ExitStack()

    def settings(self, **overrides: Any) -> Any:
        return service_settings(self.spec, self.var_dir, **overrides)

    def __call__(self, **overrides: Any) -> ServiceClient:
        return self._stack.enter_context(service_client(self.spec, self.var_dir, **overrides))

    def __enter__(self) -> ServiceStarter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def starter_fixture(spec: ServiceSpec) -> Callable[[Path], Iterator[ServiceStarter]]:
    """The generator of a ``start`` fixture for one service; a conftest wraps it with ``pytest.fixture``."""

    def start(var_dir: Path) -> Iterator[ServiceStarter]:
        with ServiceStarter(spec, var_dir) as starter:
            yield starter

    return start


# -- checks shared by the photo services (RGB, longer side capped at max_side) ---------------------------
def check_downscaled_photo(svc: ServiceClient, source: Path, max_side: int,
                           size: tuple[int, int] | None = None) -> dict[str, Any]:
    """With the service's max_side setting at ``max_side``, a larger JPEG photo comes out RGB with its longer
    side at max_side (``size`` when given), the aspect ratio kept, and the content of the photo (close to
    an independent resize of the source)."""
    assert svc.settings.max_side == max_side
    job = svc.normalize(source.read_bytes(), name=source.name)
    result = job["result"]
    assert result["source_format"] == "JPEG" and result["filename"] == source.name
    img = svc.output(job)
    assert img.mode == "RGB"
    src_w, src_h = Image.open(source).size
    w, h = img.size
    assert max(src_w, src_h) > max_side
    assert max(w, h) == max_side and (size is None or (w, h) == size)
    assert abs(w / h - src_w / src_h) < 0.01  # aspect ratio kept
    assert (result["width"], result["height"], result["channels"]) == (w, h, 3)
    expected = np.asarray(Image.open(source).convert("RGB").resize((w, h), Image.Resampling.BILINEAR), np.float32)
    assert np.abs(np.asarray(img, np.float32) - expected).mean() < 4
    return job


def check_small_photo_kept(svc: ServiceClient, source: Path, mode: str) -> None:
    """A photo below ``max_side`` is never upscaled; alpha (RGBA) is flattened to RGB."""
    src = Image.open(source)
    assert src.mode == mode and max(src.size) < svc.settings.max_side
    job = svc.normalize(source.read_bytes(), name=source.name)
    img = svc.output(job)
    assert img.size == src.size  # never upscaled
    assert img.mode == "RGB"
    assert job["result"]["source_mode"] == mode


def decode_file(path: Path, mode: Mode = "rgb") -> np.ndarray:
    """A sample file as the services decode it (uint8 RGB or gray)."""
    return decode_image(path.read_bytes(), mode=mode).pixels


def check_rgb_downscale(fn: Callable[[np.ndarray, int], np.ndarray], rgb: np.ndarray, max_side: int) -> np.ndarray:
    """An engine's ``fn(rgb, max_side)``: uint8 RGB out, longer side at ``max_side``, aspect and mean
    brightness kept, the input not modified."""
    assert max(rgb.shape[:2]) > max_side, "a downscale check needs an image larger than max_side"
    before = rgb.copy()
    out = fn(rgb, max_side)
    h, w = rgb.shape[:2]
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert max(out.shape[:2]) == max_side
    assert abs(out.shape[1] / out.shape[0] - w / h) < 0.01
    assert abs(out.mean() - rgb.mean()) < 2  # same photo, fewer pixels
    assert np.array_equal(rgb, before)  # the input is not modified
    return out


def check_rgb_kept(fn: Callable[[np.ndarray, int], np.ndarray], rgb: np.ndarray, max_side: int) -> None:
    """An engine's ``fn(rgb, max_side)`` returns an image already within ``max_side`` unchanged (never upscaled)."""
    assert max(rgb.shape[:2]) <= max_side
    out = fn(rgb, max_side)
    assert out.shape == rgb.shape and np.array_equal(out, rgb)


def check_rgb_guards(fn: Callable[[np.ndarray, int], np.ndarray]) -> None:
    """An engine's ``fn(rgb, max_side)`` refuses anything but HxWx3 (naming RGB) and a non-positive max_side."""
    cases = [((64, 64), 32), ((64, 64, 4), 32), ((64, 64, 1), 32), ((64, 64, 3), 0)]
    for shape, max_side in cases:
        try:
            fn(np.zeros(shape, np.uint8), max_side)
        except ValueError as exc:
            assert max_side < 1 or "RGB" in str(exc), (shape, exc)
        else:
            raise AssertionError(f"{fn.__name__} accepted shape {shape} with max_side {max_side}")


# -- real worker processes (worker-loss tests) ------------------------------------------------------
# Short leases so that a lost job is noticed within seconds; pass them to the API's settings too.
SHORT_LEASES: dict[str, Any] = {"job_time_limit_s": 8, "job_lease_grace_s": 2, "job_reap_interval_s": 1,
                "job_redispatch_after_s": 5, "celery_visibility_timeout_s": 10}


def clean_env() -> dict[str, str]:
    """This process's environment without BIO_* settings (the BIO_TEST_* fixture addresses stay)."""
    import os

    return {k: v for k, v in os.environ.items() if not k.upper().startswith("BIO_") or k.upper().startswith("BIO_TEST_")}


def worker_env(*, database_url: str, redis_url: str, var_dir: Any, secret: str, max_attempts: int,
               delay_s: float = 0.0, service_env_prefix: str | None = None) -> dict[str, str]:
    """Environment of a `bio-<service> worker` process with SHORT_LEASES and, for fault injection, a
    delay once a job is claimed. ``service_env_prefix`` (e.g. "BIO_FACE_VERIFY_") also sets the time
    limit with the service's prefix, for services whose settings override the common default."""
    env = clean_env()
    env.update({f"BIO_{k.upper()}": str(v) for k, v in SHORT_LEASES.items()})
    if service_env_prefix:
        env[f"{service_env_prefix}JOB_TIME_LIMIT_S"] = str(SHORT_LEASES["job_time_limit_s"])
    env.update(BIO_ENV="test", BIO_DATABASE_URL=database_url, BIO_REDIS_URL=redis_url, BIO_VAR_DIR=str(var_dir),
               BIO_INTERNAL_SECRET=secret, BIO_JOB_MAX_ATTEMPTS=str(max_attempts),
               BIO_JOB_DEBUG_DELAY_S=str(delay_s), PYTHONUNBUFFERED="1")
    return env
