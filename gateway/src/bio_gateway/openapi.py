"""One /docs for the whole platform: the gateway's own schema plus every service's paths.

Embedded mode reads each service app's schema in process; the distributed mode fetches
``<service>/<prefix>/openapi.json`` (cached briefly; a service that is down is left out and listed
in ``x-unavailable-services``). Every operation of the merged document lists the error statuses the
platform can answer with on it (authentication, rate limit, body framing and limits, validation,
upstream failures), all with the one error schema."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from bio_gateway.proxy import is_internal_path
from bio_shared.schemas import ErrorResponse

log = logging.getLogger(__name__)

SchemaSource = Callable[[], dict[str, Any]]
SECURITY: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}]
_SKIP_PATHS = {"/healthz", "/readyz", "/metrics"}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
ERROR_REF = {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}
_FASTAPI_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
# Gateway operations anyone may call: no 401 for missing credentials on them.
_PUBLIC = {("post", "/api/v1/auth/register"), ("post", "/api/v1/auth/logout")}

_COMMON = {
    "400": "Malformed request: a JSON body that is not UTF-8, an unreadable multipart body, or a bad value "
           "the operation refuses (codes in the message)",
    "401": "No valid credentials: `not_authenticated`, `invalid_token`, `token_expired`, `token_revoked`, "
           "`invalid_api_key`, `account_disabled`",
    "403": "The caller may not do this (`admin_required` on admin operations)",
    "404": "Not found: the path names nothing (of the caller's)",
    "413": "The request body exceeds the upload limit (`payload_too_large`)",
    "415": "The upload is not a supported file type",
    "422": "Validation failed (`validation_error`, `invalid_json`) or the input cannot be processed",
    "429": "Rate limit exceeded (`rate_limited`); the `Retry-After` header says when to try again",
    "502": "The service behind the gateway sent an invalid response (`bad_gateway`)",
    "503": "The service behind the gateway is unavailable (`service_unavailable`) or a time budget ran out",
    "504": "The service behind the gateway did not answer in time (`upstream_timeout`)",
}


def remote_schema(url: str, timeout_s: float = 2.0) -> SchemaSource:
    def fetch() -> dict[str, Any]:
        response = httpx.get(url, timeout=timeout_s)
        response.raise_for_status()
        return response.json()

    return fetch


def merge_service_schema(base: dict[str, Any], name: str, schema: dict[str, Any], prefix: str = "") -> None:
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
        if path in _SKIP_PATHS or (prefix and is_internal_path(prefix, path)):
            continue  # probes, and the routes only the gateway calls (not reachable through it)
        for method, op in item.items():
            if method in _METHODS and isinstance(op, dict):
                op["security"] = SECURITY
                op["x-proxied"] = name
        base["paths"][path] = item


def _applicable(method: str, path: str, op: dict[str, Any]) -> list[str]:
    body = op.get("requestBody", {}).get("content", {})
    statuses = ["429"]
    if (method, path) not in _PUBLIC:
        statuses.append("401")
    if "/admin/" in path:
        statuses.append("403")
    if "{" in path:
        statuses.append("404")
    if body:
        statuses += ["400", "413", "422"]
    if op.get("parameters"):
        statuses.append("422")
    if "multipart/form-data" in body:
        statuses.append("415")
    if op.get("x-proxied"):
        statuses += ["502", "503", "504"]
    return statuses


def document_common_errors(schema: dict[str, Any]) -> None:
    """Add the statuses every operation can answer with (where it does not say more itself)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if ErrorResponse.__name__ not in components:
        model = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model.pop("$defs", {}))
        components[ErrorResponse.__name__] = model
    for path, item in schema.get("paths", {}).items():
        for method, op in item.items():
            if method not in _METHODS or not isinstance(op, dict):
                continue
            responses = op.setdefault("responses", {})
            for entry in responses.values():  # FastAPI's default 422 is not the body the platform sends
                media = entry.get("content", {}).get("application/json", {})
                if media.get("schema") == _FASTAPI_422:
                    media["schema"] = ERROR_REF
                    entry["description"] = _COMMON["422"]
            for status in _applicable(method, path, op):
                entry = responses.setdefault(status, {"description": _COMMON[status]})
                entry.setdefault("content", {}).setdefault("application/json", {}).setdefault("schema", ERROR_REF)
            op.pop("x-proxied", None)
    if _FASTAPI_422["$ref"] not in json.dumps(schema["paths"]):
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)


def install_openapi(app: FastAPI, sources: dict[str, SchemaSource], ttl_s: float = 30.0,
                    prefixes: dict[str, str] | None = None) -> None:
    cache: dict[str, Any] = {"at": 0.0, "schema": None}
    prefixes = prefixes or {}

    def openapi() -> dict[str, Any]:
        if cache["schema"] is not None and time.monotonic() - cache["at"] < ttl_s:
            return cache["schema"]
        base = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        missing = []
        for name, source in sources.items():
            try:
                merge_service_schema(base, name, source(), prefixes.get(name, ""))
            except Exception as exc:
                log.warning("OpenAPI of %s unavailable: %s", name, exc)
                missing.append(name)
        document_common_errors(base)
        if missing:
            base["x-unavailable-services"] = missing
        cache.update(at=time.monotonic() if not missing else 0.0, schema=base)
        return base

    app.openapi = openapi  # type: ignore[method-assign]
