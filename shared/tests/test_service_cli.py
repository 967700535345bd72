"""bio_shared.services (the installed services, discovered through entry points) and bio_shared.cli (the
commands every service CLI shares: migrate, serve, worker, and a service's own)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from bio_shared.db import dispose_engines, get_engine
from bio_shared.services import ServiceSpec, discover_services
from bio_shared.settings import CommonSettings


class FakeEntryPoint:
    def __init__(self, spec: ServiceSpec) -> None:
        self.spec = spec

    def load(self) -> ServiceSpec:
        return self.spec


def fake_spec(name: str, prefix: str, settings_cls: type = CommonSettings) -> ServiceSpec:
    return ServiceSpec(name=name, prefix=prefix, package="bio_fingerprint", create_app=lambda s=None: FastAPI(),
                       settings_cls=settings_cls)


def test_service_spec(var_dir: Path) -> None:
    spec = fake_spec("face_verify", "/api/v1/face-verify")
    assert spec.version_table == "alembic_version_face_verify"
    s = spec.settings(var_dir=var_dir, log_level="DEBUG")
    assert isinstance(s, CommonSettings) and s.log_level == "DEBUG"


def test_discover_services_sorted_by_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    import bio_shared.services as services_module

    specs = [fake_spec("zeta", "/api/v1/a"), fake_spec("alpha", "/api/v1/z"), fake_spec("mid", "/api/v1/m")]
    groups: list[str] = []

    def fake_entry_points(group: str) -> list[FakeEntryPoint]:
        groups.append(group)
        return [FakeEntryPoint(s) for s in specs]

    monkeypatch.setattr(services_module, "entry_points", fake_entry_points)
    found = discover_services()
    assert groups == ["bio.services"]
    assert list(found) == ["zeta", "mid", "alpha"]
    assert found["mid"] is specs[2]


def test_discover_installed_services_are_specs() -> None:
    for name, spec in discover_services().items():
        assert isinstance(spec, ServiceSpec) and spec.name == name and spec.prefix.startswith("/")


class TestCli:
    @pytest.fixture
    def spec(self, var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ServiceSpec:
        monkeypatch.setenv("BIO_VAR_DIR", str(var_dir))
        return fake_spec("fingerprint", "/api/v1/fingerprint")

    def test_migrate(self, spec: ServiceSpec, var_dir: Path, capsys: pytest.CaptureFixture) -> None:
        from sqlalchemy import inspect

        from bio_shared.cli import service_cli

        try:
            service_cli(spec)(["migrate"])
            assert capsys.readouterr().out.strip() == "fingerprint: migrated"
            url = spec.settings().database_url
            assert "fingerprint_jobs" in inspect(get_engine(url)).get_table_names()
        finally:
            dispose_engines()

    def test_worker_execs_celery(self, spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch) -> None:
        import os
        import sys

        from bio_shared.cli import service_cli

        calls: list[tuple] = []
        monkeypatch.setattr(os, "execvp", lambda file, args: calls.append((file, args)))
        service_cli(spec)(["worker", "--concurrency", "3", "--pool", "solo", "--loglevel", "DEBUG"])
        file, args = calls[0]
        assert file == sys.executable
        assert args[:7] == [sys.executable, "-m", "celery", "-A", "bio_fingerprint.tasks", "worker", "-Q"]
        assert args[7] == "fingerprint"
        joined = " ".join(args)
        assert "--pool solo" in joined and "--concurrency 3" in joined and "--hostname fingerprint@%h" in joined
        assert args[-2:] == ["--loglevel", "DEBUG"]  # unknown options pass through to Celery

    def test_serve(self, spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch) -> None:
        import uvicorn

        from bio_shared.cli import service_cli

        runs: list[dict] = []
        monkeypatch.setattr(uvicorn, "run", lambda app, **kw: runs.append({"app": app, **kw}))
        service_cli(spec)(["serve", "--port", "8123"])
        assert runs[0]["port"] == 8123 and runs[0]["host"] == "127.0.0.1"
        assert isinstance(runs[0]["app"], FastAPI)
        assert runs[0]["access_log"] is False

    def test_extra_command_and_usage_errors(self, spec: ServiceSpec) -> None:
        from bio_shared.cli import service_cli

        seen: list[Any] = []

        def extra(sub: argparse._SubParsersAction) -> None:
            p = sub.add_parser("evaluate")
            p.add_argument("--n", type=int, default=1)
            p.set_defaults(handler=lambda args, settings: seen.append((args.n, type(settings).__name__)))

        main = service_cli(spec, extra)
        main(["evaluate", "--n", "4"])
        assert seen == [(4, "CommonSettings")]
        with pytest.raises(SystemExit) as info:
            main([])
        assert info.value.code == 2
        with pytest.raises(SystemExit):
            main(["no-such-command"])
