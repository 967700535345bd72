"""The platform's services: the catalogue (``services.toml``, the one list every tool derives from)
and the installed service packages (entry point group ``bio.services``).

The gateway never imports a service by name: in the embedded mode it mounts whatever is installed,
which keeps ``bio_gateway`` free of service imports and lets an image install only what it needs. Its
public routing table is :data:`ROUTES`, read from the catalogue, so it holds in the distributed mode
too, where no service package sits next to the gateway.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

ENTRY_POINT_GROUP = "bio.services"
CATALOGUE = "services.toml"


@dataclass(frozen=True)
class PlatformService:
    """One entry of the catalogue (see the comments in ``services.toml``)."""

    name: str
    folder: str
    package: str
    cli: str
    prefix: str
    title: str
    beat: bool = False

    @property
    def jobs_table(self) -> str:
        return f"{self.name}_jobs"

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"


@cache
def platform_services() -> tuple[PlatformService, ...]:
    """The catalogue, in its file order (the order of ports, dashboards and manifests)."""
    data = tomllib.loads(files("bio_shared").joinpath(CATALOGUE).read_text())
    found = tuple(PlatformService(**entry) for entry in data["service"])
    for field in ("name", "folder", "package", "cli", "prefix"):
        values = [getattr(s, field) for s in found]
        if len(set(values)) != len(values):
            raise ValueError(f"{CATALOGUE}: duplicate {field} in {values}")
    return found


def platform_service(name: str) -> PlatformService:
    for service in platform_services():
        if name in (service.name, service.folder):
            return service
    raise KeyError(f"unknown service {name!r}; known: {[s.name for s in platform_services()]}")


# The public routing table: service name -> path prefix (the platform's API contract).
ROUTES: dict[str, str] = {s.name: s.prefix for s in platform_services()}


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # e.g. "fingerprint" (queue name, metrics label)
    prefix: str  # e.g. "/api/v1/fingerprint"
    package: str  # import name holding migrations/
    create_app: Callable[..., FastAPI]
    settings_cls: type

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    def settings(self, **overrides: Any) -> Any:
        return self.settings_cls(**overrides)


def service_packages() -> dict[str, str]:
    """Installed services as {name: import package}, read from entry-point metadata without
    importing them: migrations need only the package's models, not its model-loading app."""
    found = {ep.name: ep.value.split(":")[0].split(".")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return dict(sorted(found.items()))


def discover_services() -> dict[str, ServiceSpec]:
    found: dict[str, ServiceSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        spec = ep.load()
        found[spec.name] = spec
    return dict(sorted(found.items(), key=lambda kv: kv[1].prefix))
