"""The one list of services (bio_shared/services.toml) agrees with the service packages and is what the
gateway routes, the launcher, the Kubernetes and Grafana builders and the Makefile use."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bio_shared.services import ROUTES, platform_service, platform_services, service_packages

ROOT = Path(__file__).resolve().parents[2]


def load_script(path: Path, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalogue_entries_point_at_real_packages() -> None:
    services = platform_services()
    assert [s.name for s in services] == ["fingerprint", "face_recognition", "face_verify", "contour_mask"]
    for s in services:
        project = tomllib.loads((ROOT / "services" / s.folder / "pyproject.toml").read_text())["project"]
        assert project["scripts"][s.cli].startswith(f"{s.package}.cli:")
        assert project["entry-points"]["bio.services"][s.name].startswith(f"{s.package}.")
        assert (ROOT / "services" / s.folder / "src" / s.package / "migrations" / "env.py").is_file()
        assert (ROOT / "deploy" / "docker" / f"{s.folder}.Dockerfile").is_file()
        assert s.prefix.startswith("/api/v1/") and s.jobs_table == f"{s.name}_jobs"
    assert platform_service("face-verify") is platform_service("face_verify")
    with pytest.raises(KeyError):
        platform_service("iris")


def test_installed_services_agree_with_the_catalogue() -> None:
    installed = service_packages()
    if not installed:
        pytest.skip("no service installed")
    assert installed == {s.name: s.package for s in platform_services()}


def test_gateway_routes_come_from_the_catalogue() -> None:
    from bio_gateway.routes import ROUTES as gateway_routes

    assert gateway_routes == ROUTES == {s.name: s.prefix for s in platform_services()}


def test_launcher_and_builders_derive_from_the_catalogue() -> None:
    sys.path.insert(0, str(ROOT / "deploy" / "local"))
    try:
        from bio_launch.plan import BEAT_SERVICES, SERVICES
    finally:
        sys.path.remove(str(ROOT / "deploy" / "local"))
    assert SERVICES == [(s.name, s.cli) for s in platform_services()]
    assert BEAT_SERVICES == {"fingerprint"}
    k8s = load_script(ROOT / "deploy" / "k8s" / "build_manifests.py", "catalogue_k8s")
    manifests = k8s.build()  # type: ignore[attr-defined]
    assert set(manifests) == {"config.yaml", "migrate.yaml", "gateway.yaml",
                              *(f"{s.folder}.yaml" for s in platform_services())}
    beat = [doc["metadata"]["name"] for doc in manifests["fingerprint.yaml"] if doc["kind"] == "Deployment"]
    assert "fingerprint-beat" in beat
    grafana = load_script(ROOT / "deploy" / "grafana" / "build_dashboards.py", "catalogue_grafana")
    assert set(grafana.build()) == {"overview.json", *(f"{s.folder}.json" for s in platform_services())}  # type: ignore[attr-defined]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_lists_come_from_the_catalogue() -> None:
    out = subprocess.run(["make", "-s", "services"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folders = " ".join(f"services/{s.folder}" for s in platform_services())
    assert f"packages: shared gateway {folders}" in out
    assert f"clis:     {' '.join(s.cli for s in platform_services())}" in out
