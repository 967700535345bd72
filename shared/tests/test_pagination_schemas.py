"""PageDep bounds limit/offset (no overflow reaches the database) and Page[T] carries the total."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from bio_shared.schemas import JobList, Page
from bio_shared.web.errors import install_error_handlers
from bio_shared.web.pagination import PageDep


class NumberPage(Page[int]):
    pass


def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/numbers", response_model=NumberPage)
    def numbers(page: PageDep) -> dict[str, Any]:
        data = list(range(1234))
        return {"items": data[page.offset:page.offset + page.limit], "total": len(data), "limit": page.limit,
                "offset": page.offset}

    return TestClient(app)


def test_defaults_and_total() -> None:
    body = client().get("/numbers").json()
    assert (body["total"], body["limit"], body["offset"], len(body["items"])) == (1234, 50, 0, 50)
    body = client().get("/numbers", params={"limit": 500, "offset": 1200}).json()
    assert body["items"] == list(range(1200, 1234)) and body["total"] == 1234


def test_out_of_range_is_a_422() -> None:
    c = client()
    for params in ({"offset": 2**63}, {"offset": 10**9 + 1}, {"offset": -1}, {"limit": 0}, {"limit": 501},
                   {"limit": "x"}):
        resp = c.get("/numbers", params=params)
        assert resp.status_code == 422, params
        assert resp.json()["error"]["code"] == "validation_error"


def test_explicit_page_names_in_openapi() -> None:
    schemas = client().get("/openapi.json").json()["components"]["schemas"]
    assert "NumberPage" in schemas and not any(name.startswith("Page_") for name in schemas)
    assert set(JobList.model_fields) == {"items", "total", "limit", "offset"}
