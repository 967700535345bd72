"""One /docs for the whole platform: the gateway's own schema plus every service's paths.

Embedded mode reads each service app's schema in process; the distributed mode fetches
``<service>/<prefix>/openapi.json`` (cached briefly; a service that is down is left out and listed
in ``x-unavailable-services``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

log = logging.getLogger(__name__)

SchemaSource = Callable[[], dict[str, Any]]
SECURITY = [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}]
_SKIP_PATHS = {"/healthz", "/readyz", "/metrics"}


def remote_schema(url: str, timeout_s: float = 2.0) -> SchemaSource:
    def fetch() -> dict[str, Any]:
        response = httpx.get(url, timeout=timeout_s)
        response.raise_for_status()
        return response.json()

    return fetch


def merge_service_schema(base: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    components = base.setdefault("components", {}).setdefault("schemas", {})
    theirs = schema.get("components", {}).get("schemas", {})
    renames = {}
    for key, value in theirs.items():
        if key in components and components[key] != value:
            renames[key] = f"{name}__{key}"
    text = json.dumps(schema)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    schema = json.loads(text)
    for key, value in schema.get("components", {}).get("schemas", {}).items():
        components[renames.get(key, key)] = value
    for path, item in schema.get("paths", {}).items():
        if path in _SKIP_PATHS:
            continue
        for op in item.values():
            if isinstance(op, dict):
                op["security"] = SECURITY
        base["paths"][path] = item


def install_openapi(app: FastAPI, sources: dict[str, SchemaSource], ttl_s: float = 30.0) -> None:
    cache: dict[str, Any] = {"at": 0.0, "schema": None}

    def openapi() -> dict[str, Any]:
        if cache["schema"] is not None and time.monotonic() - cache["at"] < ttl_s:
            return cache["schema"]
        base = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        missing = []
        for name, source in sources.items():
            try:
                merge_service_schema(base, name, source())
            except Exception as exc:
                log.warning("OpenAPI of %s unavailable: %s", name, exc)
                missing.append(name)
        if missing:
            base["x-unavailable-services"] = missing
        cache.update(at=time.monotonic() if not missing else 0.0, schema=base)
        return base

    app.openapi = openapi  # type: ignore[method-assign]
