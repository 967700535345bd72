"""Routing: both modes share the proxy; unreachable or slow services fail fast with 5xx."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from bio_gateway.routes import ROUTES
from bio_shared.services import discover_services
from bio_testing.gateway import user


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (a hung service)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    for c in held:
        c.close()
    sock.close()


def test_service_prefixes_match_the_routing_table():
    specs = discover_services()
    assert set(specs) == set(ROUTES)
    for name, spec in specs.items():
        assert spec.prefix == ROUTES[name]


def test_unreachable_service_gives_503_fast(gateway_factory):
    gw = gateway_factory(services={"fingerprint": f"http://127.0.0.1:{_free_port()}"})
    h = user(gw, "a@example.org")
    start = time.monotonic()
    r = gw.get("/api/v1/fingerprint/jobs", headers=h)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.json()["error"]["details"] == {"service": "fingerprint"}
    assert time.monotonic() - start < 3
    # not routed at all in this configuration
    assert gw.get("/api/v1/faces/events", headers=h).status_code == 404


def test_hung_service_gives_504_after_the_read_timeout(gateway_factory, silent_server):
    gw = gateway_factory(services={"fingerprint": silent_server}, proxy_read_timeout_s=0.5)
    h = user(gw, "a@example.org")
    start = time.monotonic()
    r = gw.get("/api/v1/fingerprint/jobs", headers=h)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - start < 3
    assert 'bio_gateway_upstream_errors_total{kind="timeout",service="fingerprint"}' in gw.get("/metrics").text


def test_unknown_service_name_is_a_configuration_error(tmp_path):
    from bio_gateway.app import create_app
    from bio_gateway.settings import GatewaySettings

    with pytest.raises(ValueError, match="unknown service"):
        create_app(GatewaySettings(env="test", var_dir=tmp_path, services={"iris": "http://127.0.0.1:1"}))


def test_oversized_body_is_refused_at_the_gateway(gateway_factory):
    gw = gateway_factory(max_upload_bytes=10_000)
    h = user(gw, "a@example.org")
    r = gw.post("/api/v1/fingerprint/jobs/normalize", files={"file": ("big.png", b"\0" * 2_000_000)}, headers=h)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the limit must hold while streaming
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 65536

    r = gw.post("/api/v1/fingerprint/jobs/normalize", content=chunks(),
                headers={**h, "content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413
    assert gw.get("/api/v1/fingerprint/jobs", headers=h).json()["items"] == []


def test_openapi_lists_every_service(gw):
    schema = gw.get("/openapi.json").json()
    paths = set(schema["paths"])
    for prefix in ROUTES.values():
        assert f"{prefix}/jobs/{{job_id}}" in paths, prefix
    assert "/api/v1/auth/login" in paths
    op = schema["paths"]["/api/v1/fingerprint/jobs/{job_id}"]["get"]
    assert {"OAuth2PasswordBearer": []} in op["security"]
    assert schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == \
        "/api/v1/auth/login"
    docs = gw.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_openapi_survives_a_service_that_is_down(gateway_factory):
    gw = gateway_factory(services={"fingerprint": f"http://127.0.0.1:{_free_port()}"})
    schema = gw.get("/openapi.json").json()
    assert schema["x-unavailable-services"] == ["fingerprint"]
    assert "/api/v1/auth/login" in schema["paths"]


def test_health_ready_metrics(gw):
    assert gw.get("/healthz").json()["status"] == "ok"
    ready = gw.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
    assert "bio_http_requests_total" in gw.get("/metrics").text


def test_readyz_reports_redis_down(gateway_factory):
    gw = gateway_factory(redis_url=f"redis://127.0.0.1:{_free_port()}/0", rate_limit_storage="memory://",
                         jobs_mode="inprocess")
    r = gw.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["redis"].startswith("error")
