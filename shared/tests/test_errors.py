"""bio_shared.errors: the one error model, rendered by the handlers on a small FastAPI app."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from bio_shared.errors import (
    BadRequest,
    BioError,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    UnsupportedMedia,
    error_body,
)
from bio_shared.web.errors import install_error_handlers

SECRET_TEXT = "password=hunter2 at /srv/secret/path"


class Item(BaseModel):
    name: str = Field(min_length=1)
    count: int = Field(ge=0)


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/bio/{kind}")
    def bio(kind: str) -> dict:
        classes = {c.__name__: c for c in (BadRequest, Forbidden, NotFound, Conflict, PayloadTooLarge,
                                           UnsupportedMedia, Unprocessable, TooManyRequests, ServiceUnavailable)}
        raise classes[kind](f"{kind} happened", details={"kind": kind})

    @app.get("/unauthorized")
    def unauthorized() -> dict:
        raise Unauthorized()

    @app.get("/custom")
    def custom() -> dict:
        raise BioError("custom teapot", code="im_a_teapot", status_code=418, details=[1, 2],
                       headers={"Retry-After": "7", "X-Extra": "yes"})

    @app.get("/http")
    def http() -> dict:
        raise HTTPException(status_code=409, detail="duplicate thing", headers={"X-H": "1"})

    @app.get("/http-dict")
    def http_dict() -> dict:
        raise HTTPException(status_code=400, detail={"not": "a string"})

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError(SECRET_TEXT)

    @app.get("/boom-async")
    async def boom_async() -> dict:
        raise KeyError(SECRET_TEXT)

    @app.post("/items")
    def create(item: Item) -> dict:
        return item.model_dump()

    @app.get("/query")
    def query(n: int) -> dict:
        return {"n": n}

    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(make_app(), raise_server_exceptions=False)


def assert_error_shape(body: dict) -> dict:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


@pytest.mark.parametrize("name,status,code", [
    ("BadRequest", 400, "bad_request"),
    ("Forbidden", 403, "forbidden"),
    ("NotFound", 404, "not_found"),
    ("Conflict", 409, "conflict"),
    ("PayloadTooLarge", 413, "payload_too_large"),
    ("UnsupportedMedia", 415, "unsupported_media_type"),
    ("Unprocessable", 422, "unprocessable"),
    ("TooManyRequests", 429, "rate_limited"),
    ("ServiceUnavailable", 503, "service_unavailable"),
])
def test_bio_error_subclasses(client: TestClient, name: str, status: int, code: str) -> None:
    r = client.get(f"/bio/{name}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    err = assert_error_shape(r.json())
    assert err == {"code": code, "message": f"{name} happened", "details": {"kind": name}}


def test_unauthorized_has_www_authenticate(client: TestClient) -> None:
    r = client.get("/unauthorized")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert assert_error_shape(r.json()) == {"code": "unauthorized", "message": "authentication required",
                                            "details": None}


def test_custom_code_status_and_headers(client: TestClient) -> None:
    r = client.get("/custom")
    assert r.status_code == 418
    assert r.headers["retry-after"] == "7" and r.headers["x-extra"] == "yes"
    assert assert_error_shape(r.json()) == {"code": "im_a_teapot", "message": "custom teapot", "details": [1, 2]}


def test_starlette_http_exceptions(client: TestClient) -> None:
    r = client.get("/http")
    assert r.status_code == 409 and r.headers["x-h"] == "1"
    assert assert_error_shape(r.json()) == {"code": "conflict", "message": "duplicate thing", "details": None}
    r = client.get("/http-dict")
    assert r.status_code == 400
    assert assert_error_shape(r.json())["message"] == "request failed"


def test_unknown_route_and_method(client: TestClient) -> None:
    r = client.get("/no/such/route")
    assert r.status_code == 404
    assert assert_error_shape(r.json())["code"] == "not_found"
    r = client.delete("/custom")
    assert r.status_code == 405
    assert assert_error_shape(r.json())["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"]


def test_malformed_json(client: TestClient) -> None:
    r = client.post("/items", content=b'{"name": "x", "count": ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    err = assert_error_shape(r.json())
    assert err["code"] == "invalid_json"
    assert err["message"] == "request body is not valid JSON"
    assert any(d["type"] == "json_invalid" for d in err["details"])


def test_validation_error(client: TestClient) -> None:
    r = client.post("/items", json={"name": "", "count": -1, "extra": "ignored"})
    assert r.status_code == 422
    err = assert_error_shape(r.json())
    assert err["code"] == "validation_error"
    assert err["message"] == "request validation failed"
    locs = sorted(tuple(d["loc"]) for d in err["details"])
    assert locs == [("body", "count"), ("body", "name")]
    for d in err["details"]:
        assert set(d) == {"loc", "msg", "type"}  # never echoes the input back


def test_missing_body_and_bad_query(client: TestClient) -> None:
    r = client.post("/items")
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = client.get("/query", params={"n": "abc"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "validation_error" and err["details"][0]["loc"] == ["query", "n"]


def test_valid_request_untouched(client: TestClient) -> None:
    r = client.post("/items", json={"name": "a", "count": 2})
    assert r.status_code == 200 and r.json() == {"name": "a", "count": 2}


@pytest.mark.parametrize("path", ["/boom", "/boom-async"])
def test_unhandled_exception_is_500_without_leak(client: TestClient, path: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="bio_shared.errors"):
        r = client.get(path)
    assert r.status_code == 500
    err = assert_error_shape(r.json())
    assert err == {"code": "internal_error", "message": "internal server error", "details": None}
    assert "hunter2" not in r.text and "secret" not in r.text and "Error" not in r.text
    # ...but the operator gets the traceback in the log.
    assert any(rec.exc_info and path in rec.getMessage() for rec in caplog.records)


def test_bio_error_object() -> None:
    e = BioError("plain")
    assert (e.status_code, e.code, e.message, e.details, e.headers) == (400, "bad_request", "plain", None, None)
    assert str(e) == "plain"
    assert e.to_dict() == {"code": "bad_request", "message": "plain", "details": None}
    custom = NotFound("x", code="job_not_found")
    assert custom.status_code == 404 and custom.code == "job_not_found"
    assert NotFound.code == "not_found"  # the override is per instance, not on the class
    assert Unauthorized(headers={"X": "1"}).headers == {"X": "1"}
    assert Unauthorized().headers == {"WWW-Authenticate": "Bearer"}
    assert isinstance(PayloadTooLarge("x"), BioError) and isinstance(PayloadTooLarge("x"), Exception)


def test_error_body() -> None:
    assert error_body("c", "m") == {"error": {"code": "c", "message": "m", "details": None}}
    assert error_body("c", "m", {"a": 1})["error"]["details"] == {"a": 1}
