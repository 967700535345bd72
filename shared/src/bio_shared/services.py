"""How the gateway and the tools find the installed services (entry point group ``bio.services``).

The gateway never imports a service by name: in the embedded mode it mounts whatever is installed,
which keeps ``bio_gateway`` free of service imports and lets an image install only what it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from fastapi import FastAPI

ENTRY_POINT_GROUP = "bio.services"


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
