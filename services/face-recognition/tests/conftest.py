"""Fixtures of the face-recognition tests; the API contract all services share is tests/test_service_contract.py."""

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from bio_face_recognition.app import SERVICE
from bio_testing.shared import ServiceClient, starter_fixture

start = pytest.fixture(starter_fixture(SERVICE), name="start")  # start(**settings) -> a migrated, running app


@pytest.fixture
def faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"


@pytest.fixture
def photos(data_dir: Path) -> dict[str, bytes]:
    """Small real photos (fast to process), by a short name."""
    f = data_dir / "faces"
    files = {
        "obama_a": "face_recognition/examples/obama_small.jpg",
        "obama_b": "face_recognition/examples/obama-240p.jpg",
        "obama_c": "face_recognition/examples/obama-480p.jpg",
        "hopkins_a": "davidsandberg-facenet/Anthony_Hopkins_0001.jpg",
        "hopkins_b": "davidsandberg-facenet/Anthony_Hopkins_0002.jpg",
        "clapton_a": "openface/clapton-1.jpg",
        "clapton_b": "openface/clapton-2.jpg",
        "kit": "face_recognition/knn_examples/train/kit_harington/john2.jpeg",
        "two_faces": "openface/longoria-cooper.jpg",
        "png32": "face_recognition/test_images/32bit.png",
    }
    return {k: (f / v).read_bytes() for k, v in files.items()}


class FaceApi:
    """Calls of the face recognition API as the tests make them (each asserts its expected status)."""

    P = "/api/v1/faces/events"

    @staticmethod
    def jpg(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=92)
        return buf.getvalue()

    @staticmethod
    def zip(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        return buf.getvalue()

    def create_event(self, svc: ServiceClient, name: str = "party", account: str = "acct-a", **settings: Any) -> dict:
        r = svc.client.post(self.P, json={"name": name, **settings}, headers=svc.auth(account))
        assert r.status_code == 201, r.text
        return r.json()

    def enroll(self, svc: ServiceClient, event_id: str, name: str, *images: bytes, account: str = "acct-a",
               status: int = 201, **form: Any) -> dict:
        files = [("files", (f"{name}{i}.jpg", data, "image/jpeg")) for i, data in enumerate(images)]
        data = {"name": name, **{k: str(v).lower() for k, v in form.items()}}
        r = svc.client.post(f"{self.P}/{event_id}/people", files=files, data=data, headers=svc.auth(account))
        assert r.status_code == status, r.text
        return r.json()

    def identify(self, svc: ServiceClient, event_id: str, data: bytes, account: str = "acct-a", **form: Any) -> dict:
        r = svc.client.post(f"{self.P}/{event_id}/identify", files={"file": ("probe.jpg", data, "image/jpeg")},
                            data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in form.items()},
                            headers=svc.auth(account))
        assert r.status_code == 200, r.text
        return r.json()

    @staticmethod
    def rows(svc: ServiceClient, model: type) -> int:
        with svc.rt.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    @staticmethod
    def blobs(svc: ServiceClient) -> list[Path]:
        return sorted(p for p in Path(svc.rt.blobs.root).rglob("*") if p.is_file())


@pytest.fixture
def api() -> FaceApi:
    return FaceApi()
