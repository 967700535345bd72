"""Migrations of face-recognition (own version table, SQLite and PostgreSQL) and how the package is found."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from bio_face_recognition.app import NAME, PREFIX, SERVICE
from bio_face_recognition.models import Base, Job
from bio_face_recognition.settings import FaceRecognitionSettings
from bio_shared.db import alembic_config, downgrade, get_engine, migrate
from bio_shared.services import discover_services

PACKAGE, VERSION_TABLE, HEAD = "bio_face_recognition", "alembic_version_face_recognition", "fr0001"


def assert_at_head(url: str) -> None:
    engine = get_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert {Job.__tablename__, VERSION_TABLE} <= tables
    assert "alembic_version" not in tables  # never Alembic's shared default table
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == HEAD
        # the migration creates exactly what the model declares
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
        assert compare_metadata(ctx, Base.metadata) == []


def test_head_is_the_only_head():
    script = ScriptDirectory.from_config(alembic_config(PACKAGE, "sqlite://"))
    assert script.get_heads() == [HEAD]


def test_fresh_sqlite_database_migrates_to_head_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'fr.db'}"
    migrate(PACKAGE, url)
    assert_at_head(url)
    migrate(PACKAGE, url)  # a second run is a no-op
    assert_at_head(url)
    downgrade(PACKAGE, url, "base")
    assert Job.__tablename__ not in inspect(get_engine(url)).get_table_names()
    migrate(PACKAGE, url)
    assert_at_head(url)


@pytest.mark.integration
def test_postgres_database_migrates_to_head(pg_url):
    migrate(PACKAGE, pg_url)
    assert_at_head(pg_url)
    downgrade(PACKAGE, pg_url, "base")
    assert Job.__tablename__ not in inspect(get_engine(pg_url)).get_table_names()
    migrate(PACKAGE, pg_url)
    assert_at_head(pg_url)


def test_service_is_discovered_through_its_entry_point():
    spec = discover_services()[NAME]
    assert spec is SERVICE
    assert (spec.prefix, spec.package, spec.version_table) == (PREFIX, PACKAGE, VERSION_TABLE)
    assert spec.settings_cls is FaceRecognitionSettings
    (script,) = entry_points(group="console_scripts", name="bio-face-recognition")
    assert script.value == "bio_face_recognition.cli:main"


def test_cli_migrate_uses_the_service_env_prefix(tmp_path, monkeypatch, capsys):
    from bio_face_recognition.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BIO_FACE_RECOGNITION_DATABASE_URL", url)
    monkeypatch.setenv("BIO_FACE_RECOGNITION_VAR_DIR", str(tmp_path / "var"))
    main(["migrate"])
    assert "face_recognition: migrated" in capsys.readouterr().out
    assert_at_head(url)


def test_celery_worker_module_has_the_job_task_on_its_own_queue(tmp_path):
    env = os.environ | {"BIO_FACE_RECOGNITION_VAR_DIR": str(tmp_path), "BIO_FACE_RECOGNITION_DATABASE_URL": "",
                        "BIO_FACE_RECOGNITION_REDIS_URL": ""}
    code = ("import bio_face_recognition.tasks as t; c = t.app.conf; "
            "print(t.run_job.name, c.task_default_queue, c.task_acks_late, c.task_reject_on_worker_lost)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out == ["bio_face_recognition.run_job", NAME, "True", "True"]
