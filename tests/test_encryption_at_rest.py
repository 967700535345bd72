"""Templates, embeddings and images are sealed at rest: after enrolling faces and prints through the
embedded gateway no database row or blob file holds a plaintext template, embedding or image, and
after `bio-platform rotate-keys --new-key --retire` everything still matches."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import LargeBinary, select, type_coerce

from bio_gateway import keys_cli
from bio_gateway.app import create_app
from bio_gateway.settings import GatewaySettings
from bio_shared import crypto
from bio_shared.db import get_engine, migrate
from bio_shared.services import discover_services
from bio_testing.gateway import user as account

pytestmark = pytest.mark.data
DB1 = "fingerprints/fvc2002/DB1_B"
FACES = "faces/face_recognition"


def service_settings(var_dir: Path) -> dict:
    return {"env": "test", "var_dir": var_dir, "log_json": False, "database_url": "", "redis_url": "",
            "jobs_mode": "inprocess"}


def _gateway(var_dir: Path):
    from fastapi.testclient import TestClient

    settings = GatewaySettings(env="test", var_dir=var_dir, log_json=False, database_url="", redis_url="",
                               services={})
    migrate("bio_gateway", settings.database_url)
    overrides = service_settings(var_dir)
    for spec in discover_services().values():
        migrate(spec.package, spec.settings(**overrides).database_url)
    return TestClient(create_app(settings, service_overrides=overrides)), settings


def _enroll_everything(client, auth, data_dir: Path) -> tuple[str, dict]:
    ev = client.post("/api/v1/faces/events", json={"name": "vault", "keep_images": True}, headers=auth)
    assert ev.status_code == 201, ev.text
    eid = ev.json()["id"]
    photos = [(data_dir / FACES / "test_images" / n).read_bytes() for n in ("obama.jpg", "obama2.jpg")]
    r = client.post(f"/api/v1/faces/events/{eid}/people", headers=auth, data={"name": "Barack Obama"},
                    files=[("files", (f"o{i}.jpg", p, "image/jpeg")) for i, p in enumerate(photos)])
    assert r.status_code == 201, r.text
    prints = [(data_dir / DB1 / f"101_{i}.tif").read_bytes() for i in (1, 2)]
    r = client.post("/api/v1/fingerprint/enroll", headers=auth, data={"subject": "alice", "finger": "2"},
                    files=[("files", (f"101_{i}.tif", p, "image/tiff")) for i, p in enumerate(prints)])
    assert r.status_code == 201, r.text
    return eid, {"photos": photos, "prints": prints}


def _plaintext_values(var_dir: Path) -> dict[str, list[bytes]]:
    """The opened (plaintext) values of every sealed column, read through the ORM types."""
    from bio_shared.key_rotation import sealed_columns

    out: dict[str, list[bytes]] = {}
    url = service_settings(var_dir)
    for spec in discover_services().values():
        models = __import__(f"{spec.package}.models", fromlist=["Base"])
        engine = get_engine(spec.settings(**url).database_url)
        for table, column, _ in sealed_columns(models.Base.metadata):
            with engine.connect() as conn:
                out[f"{table.name}.{column}"] = [bytes(v) for (v,) in conn.execute(select(table.c[column]))]
                raw = [bytes(v) for (v,) in conn.execute(select(type_coerce(table.c[column], LargeBinary)))]
            assert all(crypto.is_sealed(v) for v in raw), f"{table.name}.{column} holds an unsealed value"
    return out


def _assert_nothing_in_the_clear(var_dir: Path, secrets: list[bytes]) -> set[str]:
    stored = [p for p in var_dir.rglob("*") if p.is_file() and p.suffix not in (".key", ".json") or
              (p.is_file() and "blobs" in p.parts)]
    key_ids: set[str] = set()
    for path in stored:
        data = path.read_bytes()
        for s in secrets:
            assert s not in data, f"plaintext found in {path}"
        if "blobs" in path.parts:
            assert crypto.is_sealed(data), f"unsealed blob {path}"
            key_id = crypto.Envelope.key_id_of(data)
            assert key_id is not None, f"sealed blob without a key id: {path}"
            key_ids.add(key_id)
        for magic in (b"\x89PNG\r\n", b"\xff\xd8\xff", b"II*\x00"):
            if "blobs" in path.parts:
                assert not data.startswith(magic), f"image in the clear: {path}"
    return key_ids


def test_nothing_in_the_clear_and_still_matching_after_rotation(var_dir: Path, data_dir: Path) -> None:
    client, settings = _gateway(var_dir)
    with client:
        auth = account(client, "vault@example.org")
        eid, inputs = _enroll_everything(client, auth, data_dir)
        values = _plaintext_values(var_dir)
        assert values["face_embeddings.vector"] and values["fingerprint_templates.minutiae"]
        # embeddings are float32 128-d: search for each whole vector and its first 32 bytes
        secrets = [v for vs in values.values() for v in vs] + [v[:32] for vs in values.values() for v in vs]
        secrets += [p[1000:1064] for p in inputs["photos"] + inputs["prints"]]
        assert len(np.frombuffer(values["face_embeddings.vector"][0], np.float32)) == 128
        old_ids = _assert_nothing_in_the_clear(var_dir, secrets)
        assert len(old_ids) == 1

        args = argparse.Namespace(new_key=True, reencrypt=False, retire=True)
        keys_cli.run(args, settings)
        new_ids = _assert_nothing_in_the_clear(var_dir, secrets)
        assert new_ids.isdisjoint(old_ids) and len(new_ids) == 1
        keyfile = json.loads((var_dir / "secrets" / "kek.json").read_text())
        assert set(keyfile["keys"]) == new_ids  # the old KEK was retired: nothing uses it
        crypto._RING._keks.pop(next(iter(old_ids)))  # forget it in this process too: reads need the new one

        probe = (data_dir / FACES / "test_images" / "obama3.jpg").read_bytes()
        r = client.post(f"/api/v1/faces/events/{eid}/identify", headers=auth,
                        files={"file": ("probe.jpg", probe, "image/jpeg")})
        assert r.status_code == 200, r.text
        assert r.json()["faces"][0]["match"]["person_name"] == "Barack Obama"
        v = client.post("/api/v1/fingerprint/verify", headers=auth, data={"subject": "alice"},
                        files={"file": ("101_3.tif", (data_dir / DB1 / "101_3.tif").read_bytes(), "image/tiff")})
        assert v.status_code == 200 and v.json()["match"] is True, v.text
