"""bio_shared.metrics: requests counted by route template, latency histograms, the /metrics body."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bio_shared.metrics import (
    GALLERY_SIZE,
    HTTP_LATENCY,
    HTTP_REQUESTS,
    INFERENCE,
    JOBS,
)
from bio_shared.web.errors import install_error_handlers
from bio_shared.web.metrics import MetricsMiddleware, metrics_response


def requests_count(service: str, method: str, route: str, status: str) -> float | None:
    return REGISTRY.get_sample_value("bio_http_requests_total",
                                     {"service": service, "method": method, "route": route, "status": status})


def latency_count(service: str, method: str, route: str) -> float | None:
    return REGISTRY.get_sample_value("bio_http_request_duration_seconds_count",
                                     {"service": service, "method": method, "route": route})


@pytest.fixture
def service() -> str:
    return f"svc_{uuid.uuid4().hex[:8]}"  # fresh label values: the registry is process-wide


@pytest.fixture
def client(service: str) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict:
        return {"id": item_id}

    @app.post("/items/{item_id}/tags/{tag}")
    def tag(item_id: int, tag: str) -> dict:
        return {}

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("x")

    router = APIRouter(prefix="/api/v1/things")

    @router.get("/jobs/{job_id}")
    def job(job_id: str) -> dict:
        return {"job": job_id}

    app.include_router(router)
    app.add_middleware(MetricsMiddleware, service=service)
    return TestClient(app, raise_server_exceptions=False)


def test_labels_by_route_template(client: TestClient, service: str) -> None:
    for i in (1, 2, 3):
        assert client.get(f"/items/{i}").status_code == 200
    assert requests_count(service, "GET", "/items/{item_id}", "200") == 3
    for i in (1, 2, 3):
        assert requests_count(service, "GET", f"/items/{i}", "200") is None
    assert latency_count(service, "GET", "/items/{item_id}") == 3


def test_prefixed_router_and_several_params(client: TestClient, service: str) -> None:
    client.get("/api/v1/things/jobs/abc")
    client.get("/api/v1/things/jobs/def")
    client.post("/items/5/tags/red")
    assert requests_count(service, "GET", "/api/v1/things/jobs/{job_id}", "200") == 2
    assert requests_count(service, "POST", "/items/{item_id}/tags/{tag}", "200") == 1


def test_status_labels(client: TestClient, service: str) -> None:
    assert client.get("/items/not-a-number").status_code == 422
    assert requests_count(service, "GET", "/items/{item_id}", "422") == 1
    assert client.get("/boom").status_code == 500
    assert requests_count(service, "GET", "/boom", "500") == 1
    assert client.delete("/items/1").status_code == 405
    assert requests_count(service, "DELETE", "/items/{item_id}", "405") == 1


def test_unmatched_paths_share_one_label(client: TestClient, service: str) -> None:
    for p in ("/nope", "/nope/1", f"/random/{uuid.uuid4().hex}"):
        assert client.get(p).status_code == 404
    assert requests_count(service, "GET", "unmatched", "404") == 3


def test_services_are_separate_series(service: str) -> None:
    other = service + "_b"
    apps = []
    for name in (service, other):
        app = FastAPI()

        @app.get("/ping")
        def ping() -> dict:
            return {}

        app.add_middleware(MetricsMiddleware, service=name)
        apps.append(TestClient(app))
    apps[0].get("/ping")
    apps[1].get("/ping")
    apps[1].get("/ping")
    assert requests_count(service, "GET", "/ping", "200") == 1
    assert requests_count(other, "GET", "/ping", "200") == 2


def test_metrics_response_exposition(client: TestClient, service: str) -> None:
    client.get("/items/9")
    JOBS.labels(service, "normalize", "submitted").inc()
    INFERENCE.labels(service, "model-a").observe(0.02)
    GALLERY_SIZE.labels(service, "main").set(12)
    resp = metrics_response()
    assert resp.media_type.startswith("text/plain")
    text = resp.body.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("bio_http_requests", "bio_http_request_duration_seconds", "bio_jobs", "bio_job_duration_seconds",
                 "bio_job_queue_wait_seconds", "bio_inference_seconds", "bio_gallery_size"):
        assert name in families, name
    samples = [s for s in families["bio_http_requests"].samples if s.labels.get("service") == service]
    assert any(s.labels["route"] == "/items/{item_id}" and s.value == 1 for s in samples)
    gallery = [s for s in families["bio_gallery_size"].samples if s.labels.get("service") == service]
    assert gallery[0].value == 12


def test_metrics_response_multiprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    resp = metrics_response()
    assert resp.status_code == 200
    assert "bio_http_requests_total" not in resp.body.decode()  # aggregated from the (empty) folder instead


def test_non_http_scope_passes_through() -> None:
    import asyncio

    seen = []

    async def inner(scope, receive, send) -> None:
        seen.append(scope["type"])

    asyncio.run(MetricsMiddleware(inner, service="x")({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


def test_metric_objects_have_expected_labels() -> None:
    assert HTTP_REQUESTS._labelnames == ("service", "method", "route", "status")
    assert HTTP_LATENCY._labelnames == ("service", "method", "route")
    assert JOBS._labelnames == ("service", "kind", "outcome")
