"""The operational contract every service keeps, once for each installed service (ids = service names).

Probes, metrics, migrations, packaging and the RGB normalisation of the face services; the request
side of the contract is in test_service_contract.py. The fixtures ``spec``, ``start``, ``svc`` and
``photo`` live in tests/conftest.py.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import inspect, text

from bio_shared.db import alembic_config, downgrade, get_engine, migrate
from bio_shared.services import ENTRY_POINT_GROUP, ServiceSpec, discover_services
from bio_shared.settings import CommonSettings
from bio_testing.shared import (
    ServiceClient,
    ServiceStarter,
    check_downscaled_photo,
    check_small_photo_kept,
    service_settings,
)

SPECS = discover_services()


def module_of(spec: ServiceSpec, room: str) -> ModuleType:
    return importlib.import_module(f"{spec.package}.{room}")


# -- probes and metrics ---------------------------------------------------------------------------
def _requests_total(svc: ServiceClient, route: str, status: str) -> float:
    for family in text_string_to_metric_families(svc.client.get("/metrics").text):
        if family.name == "bio_http_requests":
            for sample in family.samples:
                labels = sample.labels
                if (sample.name == "bio_http_requests_total" and labels["service"] == svc.spec.name
                        and labels["route"] == route and labels["status"] == status and labels["method"] == "GET"):
                    return sample.value
    return 0.0


def test_health_and_readiness(svc):
    assert svc.client.get("/healthz").json() == {"status": "ok", "service": svc.spec.name}
    ready = svc.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_metrics_count_requests_by_route_template(svc):
    before = _requests_total(svc, svc.jobs_url, "200")
    assert svc.client.get(svc.jobs_url, headers=svc.auth()).status_code == 200
    metrics = svc.client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert "bio_http_requests_total" in metrics.text
    assert _requests_total(svc, svc.jobs_url, "200") == before + 1
    # labelled by route template, never by the raw id
    template = f"{svc.jobs_url}/{{job_id}}"
    before = _requests_total(svc, template, "404")
    assert svc.client.get(f"{svc.jobs_url}/{'9' * 32}", headers=svc.auth()).status_code == 404
    assert _requests_total(svc, template, "404") == before + 1
    assert "9" * 32 not in svc.client.get("/metrics").text


def test_readyz_reports_an_unreachable_database(spec, var_dir):
    settings = service_settings(spec, var_dir, database_url="postgresql://nobody@127.0.0.1:9/none")
    with TestClient(spec.create_app(settings)) as c:
        resp = c.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable" and body["checks"]["database"].startswith("error")


def test_openapi_documents_the_normalize_route(svc):
    spec = svc.client.get(f"{svc.spec.prefix}/openapi.json").json()
    assert set(spec["paths"][svc.normalize_url]["post"]["responses"]) >= {"202", "401", "413", "415", "422"}


# -- migrations -----------------------------------------------------------------------------------
def only_head(spec: ServiceSpec) -> str:
    heads = ScriptDirectory.from_config(alembic_config(spec.package, "sqlite://")).get_heads()
    assert len(heads) == 1, heads
    return heads[0]


def assert_at_head(spec: ServiceSpec, url: str) -> None:
    models = module_of(spec, "models")
    engine = get_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert spec.version_table == f"alembic_version_{spec.name}"
    assert {models.Job.__tablename__, spec.version_table} <= tables
    assert "alembic_version" not in tables  # never Alembic's shared default table
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT version_num FROM {spec.version_table}")).scalar_one() == only_head(spec)
        # the migration creates exactly what the model declares
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": spec.version_table})
        assert compare_metadata(ctx, models.Base.metadata) == []


def assert_up_down_up(spec: ServiceSpec, url: str) -> None:
    migrate(spec.package, url)
    assert_at_head(spec, url)
    migrate(spec.package, url)  # a second run is a no-op
    assert_at_head(spec, url)
    downgrade(spec.package, url, "base")
    assert module_of(spec, "models").Job.__tablename__ not in inspect(get_engine(url)).get_table_names()
    migrate(spec.package, url)
    assert_at_head(spec, url)


def test_migrations_have_a_single_head(spec):
    assert only_head(spec)


def test_fresh_sqlite_database_migrates_to_head_and_back(spec, tmp_path):
    assert_up_down_up(spec, f"sqlite:///{tmp_path / 'service.db'}")


@pytest.mark.integration
def test_postgres_database_migrates_to_head_and_back(spec, pg_url):
    assert_up_down_up(spec, pg_url)


def test_cli_migrate_uses_the_service_env_prefix(spec, tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv(f"BIO_{spec.name.upper()}_DATABASE_URL", url)
    monkeypatch.setenv(f"BIO_{spec.name.upper()}_VAR_DIR", str(tmp_path / "var"))
    module_of(spec, "cli").main(["migrate"])
    assert f"{spec.name}: migrated" in capsys.readouterr().out
    assert_at_head(spec, url)


# -- packaging ------------------------------------------------------------------------------------
def test_service_is_discovered_through_its_entry_point(spec):
    app = module_of(spec, "app")
    assert app.SERVICE is spec
    assert (spec.name, spec.prefix) == (app.NAME, app.PREFIX)
    assert spec.prefix.startswith("/api/v1/")
    (ep,) = entry_points(group=ENTRY_POINT_GROUP, name=spec.name)
    assert ep.value == f"{spec.package}.app:SERVICE"
    assert spec.settings_cls.__module__ == f"{spec.package}.settings"
    assert issubclass(spec.settings_cls, CommonSettings)
    assert spec.settings_cls.model_config["env_prefix"] == f"BIO_{spec.name.upper()}_"
    (script,) = entry_points(group="console_scripts", name=f"bio-{spec.name.replace('_', '-')}")
    assert script.value == f"{spec.package}.cli:main"


def test_celery_worker_module_has_the_job_task_on_its_own_queue(spec, tmp_path):
    prefix = f"BIO_{spec.name.upper()}_"
    env = os.environ | {f"{prefix}VAR_DIR": str(tmp_path), f"{prefix}DATABASE_URL": "", f"{prefix}REDIS_URL": ""}
    code = (f"import {spec.package}.tasks as t; c = t.app.conf; "
            "print(t.run_job.name, c.task_default_queue, c.task_acks_late, c.task_reject_on_worker_lost)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == [f"{spec.package}.run_job", spec.name, "True", "True"]


# -- the RGB normalisation of the face services (fit_rgb), on real photos ------------------------------
RGB_SERVICES = [name for name in SPECS if name != "fingerprint"]


@pytest.fixture(params=RGB_SERVICES)
def rgb_start(request: pytest.FixtureRequest, var_dir: Path) -> Iterator[ServiceStarter]:
    with ServiceStarter(SPECS[request.param], var_dir) as starter:
        yield starter


@pytest.fixture
def faces(data_dir: Path) -> Path:
    return data_dir / "faces" / "face_recognition"


@pytest.mark.parametrize("rel", ["test_images/obama3.jpg",  # 1434 x 2333
                                 "knn_examples/test/obama_and_biden.jpg"])  # 2000 x 1428, two faces
def test_rgb_normalize_downscales_a_large_photo(rgb_start, faces, rel):
    check_downscaled_photo(rgb_start(), faces / rel, max_side=1024)


@pytest.mark.parametrize("rel,mode", [("examples/obama_small.jpg", "RGB"), ("examples/obama-240p.jpg", "RGB"),
                                      ("examples/alex-lacamoire.png", "RGBA"),
                                      ("examples/lin-manuel-miranda.png", "RGBA")])
def test_rgb_normalize_keeps_small_photos_and_flattens_alpha(rgb_start, faces, rel, mode):
    check_small_photo_kept(rgb_start(), faces / rel, mode)


def test_rgb_normalize_max_side_comes_from_the_service_env_prefix(monkeypatch, rgb_start, faces):
    monkeypatch.setenv(f"BIO_{rgb_start.spec.name.upper()}_MAX_SIDE", "300")
    check_downscaled_photo(rgb_start(), faces / "examples" / "obama-720p.jpg", max_side=300, size=(300, 169))
