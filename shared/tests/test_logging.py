"""bio_shared.logging: JSON log lines carrying the request id, and the request-id middleware."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.testclient import TestClient

from bio_shared.logging import (
    REQUEST_ID_HEADER,
    JsonFormatter,
    RequestIdMiddleware,
    clean_request_id,
    configure_logging,
    new_request_id,
    request_id_var,
    service_var,
)

HEX32 = re.compile(r"[0-9a-f]{32}")


class FormattingHandler(logging.Handler):
    """Formats at emit time (in the emitting thread, so the contextvar is the one of that request)."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, FormattingHandler]]:
    logger = logging.getLogger("bio.test.json")
    handler = FormattingHandler(JsonFormatter("testsvc"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


@pytest.fixture
def access_capture() -> Iterator[FormattingHandler]:
    logger = logging.getLogger("bio.access")
    handler = FormattingHandler(JsonFormatter("testsvc"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)


# -- JsonFormatter -----------------------------------------------------------------------------------------


def test_json_line_fields(capture) -> None:
    logger, handler = capture
    logger.warning("hello %s, %d times", "world", 3)
    assert len(handler.lines) == 1 and "\n" not in handler.lines[0]
    entry = handler.entries()[0]
    assert entry["level"] == "warning"
    assert entry["service"] == "testsvc"
    assert entry["logger"] == "bio.test.json"
    assert entry["msg"] == "hello world, 3 times"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])
    assert "request_id" not in entry and "exc" not in entry


def test_request_id_from_contextvar(capture) -> None:
    logger, handler = capture
    token = request_id_var.set("rid-from-context")
    try:
        logger.info("inside a request")
    finally:
        request_id_var.reset(token)
    logger.info("outside")
    first, second = handler.entries()
    assert first["request_id"] == "rid-from-context"
    assert "request_id" not in second


def test_request_id_from_record_wins(capture) -> None:
    logger, handler = capture
    token = request_id_var.set("ctx")
    try:
        logger.info("x", extra={"request_id": "explicit"})
    finally:
        request_id_var.reset(token)
    assert handler.entries()[0]["request_id"] == "explicit"


def test_known_extras_and_exception(capture) -> None:
    logger, handler = capture
    logger.info("done", extra={"method": "GET", "path": "/x", "status": 200, "duration_ms": 1.5,
                               "account": "a1", "job_id": "j1", "unlisted": "dropped"})
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("failed")
    ok, failed = handler.entries()
    assert {k: ok[k] for k in ("method", "path", "status", "duration_ms", "account", "job_id")} == {
        "method": "GET", "path": "/x", "status": 200, "duration_ms": 1.5, "account": "a1", "job_id": "j1"}
    assert "unlisted" not in ok
    assert failed["level"] == "error"
    assert "ValueError: bad value" in failed["exc"] and "Traceback" in failed["exc"]


def test_non_json_values_and_quotes(capture) -> None:
    logger, handler = capture
    logger.info('quote " backslash \\ newline \n tab \t unicode é', extra={"job_id": object()})
    entry = handler.entries()[0]
    assert entry["msg"] == 'quote " backslash \\ newline \n tab \t unicode é'
    assert entry["job_id"].startswith("<object object")


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, getattr(root, "_bio_configured", None))
    try:
        if hasattr(root, "_bio_configured"):
            del root._bio_configured
        configure_logging("svc-one", "debug", json_logs=True)
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.handlers[0].formatter.service == "svc-one"
        assert root.level == logging.DEBUG
        assert logging.getLogger("uvicorn.access").disabled
        assert logging.getLogger("httpx").level == logging.WARNING
        first = root.handlers[0]
        configure_logging("svc-two", "ERROR", json_logs=False)  # second call: no change
        assert root.handlers == [first] and root.level == logging.DEBUG
        del root._bio_configured
        configure_logging("svc-three", "INFO", json_logs=False)
        assert not isinstance(root.handlers[0].formatter, JsonFormatter)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        if saved[2] is None and hasattr(root, "_bio_configured"):
            del root._bio_configured
        elif saved[2] is not None:
            root._bio_configured = saved[2]
        logging.getLogger("uvicorn.access").disabled = False


@pytest.mark.parametrize("value,ok", [
    ("abc-123", True),
    ("a.b_c:d-e", True),
    ("x" * 128, True),
    ("x" * 129, False),
    ("x" * 300, False),
    ("", False),
    (None, False),
    ("has space", False),
    ("new\nline", False),
    ("cr\rlf", False),
    ("tab\t", False),
    ("semi;colon", False),
    ("é", False),
    ("<script>", False),
    pytest.param("abc\n", False),
])
def test_clean_request_id(value, ok: bool) -> None:
    assert clean_request_id(value) == (value if ok else None)


def test_new_request_id() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100 and all(HEX32.fullmatch(i) for i in ids)


# -- RequestIdMiddleware -----------------------------------------------------------------------------------


def make_app(**mw) -> FastAPI:
    app = FastAPI()

    @app.get("/rid")
    def rid(request: Request) -> dict:
        return {"var": request_id_var.get(), "state": request.state.request_id}

    @app.get("/async-rid")
    async def async_rid() -> dict:
        logging.getLogger("bio.test.inner").info("handling")
        return {"var": request_id_var.get()}

    @app.get("/own-header")
    def own_header() -> PlainTextResponse:
        return PlainTextResponse("x", headers={"X-Request-ID": "app-set-this"})

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("boom")

    @app.get("/teapot")
    def teapot() -> JSONResponse:
        return JSONResponse({}, status_code=418)

    app.add_middleware(RequestIdMiddleware, **mw)
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app(), raise_server_exceptions=False)


def test_echoes_valid_incoming_id(client: TestClient) -> None:
    r = client.get("/rid", headers={REQUEST_ID_HEADER: "gw-req:42.a_b"})
    assert r.headers[REQUEST_ID_HEADER] == "gw-req:42.a_b"
    assert r.json() == {"var": "gw-req:42.a_b", "state": "gw-req:42.a_b"}


def test_generates_when_absent(client: TestClient) -> None:
    r1, r2 = client.get("/rid"), client.get("/rid")
    for r in (r1, r2):
        rid = r.headers[REQUEST_ID_HEADER]
        assert HEX32.fullmatch(rid)
        assert r.json() == {"var": rid, "state": rid}
    assert r1.headers[REQUEST_ID_HEADER] != r2.headers[REQUEST_ID_HEADER]


@pytest.mark.parametrize("bad", ["x" * 300, "has space", "semi;colon", "<script>alert(1)</script>", ""])
def test_replaces_invalid_incoming_id(client: TestClient, bad: str) -> None:
    r = client.get("/rid", headers={REQUEST_ID_HEADER: bad})
    rid = r.headers[REQUEST_ID_HEADER]
    assert rid != bad and HEX32.fullmatch(rid)
    assert r.json()["var"] == rid


def run_asgi(app, headers: list[tuple[bytes, bytes]], path: str = "/rid") -> tuple[int, list, bytes]:
    """Drive the ASGI app directly: lets a test send header bytes an HTTP client would refuse."""
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": headers, "client": ("127.0.0.1", 1234), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], start["headers"], body


@pytest.mark.parametrize("bad", [b"evil\r\nSet-Cookie: a=b", b"line\nbreak", b"\x00nul", b"caf\xe9"])
def test_header_injection_attempts_replaced(bad: bytes) -> None:
    status, headers, body = run_asgi(make_app(), [(b"x-request-id", bad)])
    assert status == 200
    rids = [v for k, v in headers if k.lower() == b"x-request-id"]
    assert len(rids) == 1 and HEX32.fullmatch(rids[0].decode())
    assert json.loads(body)["var"] == rids[0].decode()
def test_trailing_newline_id_replaced() -> None:
    status, headers, body = run_asgi(make_app(), [(b"x-request-id", b"abc\n")])
    rids = [v for k, v in headers if k.lower() == b"x-request-id"]
    assert len(rids) == 1 and HEX32.fullmatch(rids[0].decode()), rids


def test_single_response_header_even_if_app_sets_one(client: TestClient) -> None:
    status, headers, _ = run_asgi(make_app(), [(b"x-request-id", b"caller-id")], path="/own-header")
    rids = [v for k, v in headers if k.lower() == b"x-request-id"]
    assert rids == [b"caller-id"]


def test_untrusted_incoming_ignored() -> None:
    c = TestClient(make_app(trust_incoming=False))
    r = c.get("/rid", headers={REQUEST_ID_HEADER: "spoofed-by-client"})
    assert r.headers[REQUEST_ID_HEADER] != "spoofed-by-client"
    assert HEX32.fullmatch(r.headers[REQUEST_ID_HEADER])


def test_access_log_line(client: TestClient, access_capture: FormattingHandler) -> None:
    client.get("/teapot", headers={REQUEST_ID_HEADER: "rid-teapot"})
    client.get("/boom", headers={REQUEST_ID_HEADER: "rid-boom"})
    entries = access_capture.entries()
    assert len(entries) == 2
    teapot, boom = entries
    assert teapot["request_id"] == "rid-teapot"
    assert (teapot["method"], teapot["path"], teapot["status"]) == ("GET", "/teapot", 418)
    assert isinstance(teapot["duration_ms"], float) and teapot["duration_ms"] >= 0
    assert teapot["msg"] == "GET /teapot 418"
    assert boom["request_id"] == "rid-boom" and boom["status"] == 500


def test_logs_inside_handlers_carry_the_id(client: TestClient) -> None:
    logger = logging.getLogger("bio.test.inner")
    handler = FormattingHandler(JsonFormatter("testsvc"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        r = client.get("/async-rid", headers={REQUEST_ID_HEADER: "inner-rid"})
    finally:
        logger.removeHandler(handler)
    assert r.json() == {"var": "inner-rid"}
    assert handler.entries()[0]["request_id"] == "inner-rid"


def test_service_label_from_middleware(access_capture: FormattingHandler) -> None:
    """In the embedded mode one process logs for every service: the line names the one handling it."""
    logger = logging.getLogger("bio.test.inner")
    handler = FormattingHandler(JsonFormatter("gateway"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        c = TestClient(make_app(service="fingerprint"))
        r = c.get("/async-rid", headers={REQUEST_ID_HEADER: "svc-rid"})
        assert r.status_code == 200
        logger.info("outside any request")
    finally:
        logger.removeHandler(handler)
    inside, outside = handler.entries()
    assert inside["service"] == "fingerprint" and inside["request_id"] == "svc-rid"
    assert outside["service"] == "gateway" and "request_id" not in outside
    assert access_capture.entries()[-1]["service"] == "fingerprint"
    assert service_var.get() is None


def test_service_var_overrides_formatter_default(capture) -> None:
    logger, handler = capture
    token = service_var.set("face_verify")
    try:
        logger.info("x")
    finally:
        service_var.reset(token)
    logger.info("y")
    assert [e["service"] for e in handler.entries()] == ["face_verify", "testsvc"]


def test_contextvar_reset_after_request() -> None:
    app = make_app()
    run_asgi(app, [(b"x-request-id", b"one")])
    assert request_id_var.get() is None


def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope, receive, send) -> None:
        seen.append(scope["type"])

    mw = RequestIdMiddleware(inner)
    asyncio.run(mw({"type": "lifespan"}, None, None))
    asyncio.run(mw({"type": "websocket", "headers": []}, None, None))
    assert seen == ["lifespan", "websocket"]
