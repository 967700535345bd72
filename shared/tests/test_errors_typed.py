"""Typed domain errors: pure Python, registered by code, declared on routes through error_responses."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from bio_shared.errors import (
    BioError,
    InternalError,
    InvalidJson,
    NotFound,
    ServiceUnavailable,
    TimeBudgetExceeded,
    Unprocessable,
    error_class,
    error_from_dict,
)
from bio_shared.web.errors import error_responses, install_error_handlers


class QualityTooLow(Unprocessable):
    code = "test_quality_too_low"
    message = "the print quality is too low"


class NotAPrint(Unprocessable):
    code = "test_not_a_print"
    message = "the image is not a fingerprint"


class PrintMissing(NotFound):
    code = "test_print_missing"


ENGINE_IMPORTS = ("bio_shared.errors", "bio_shared.images", "bio_shared.metrics", "bio_shared.inference",
                  "bio_shared.jsonsafe", "bio_shared.text", "bio_shared.scoring", "bio_shared.model_registry",
                  "bio_shared.gallery_cache", "bio_shared.dlib_resnet")


def test_engine_facing_modules_load_no_web_framework_nor_database() -> None:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in ENGINE_IMPORTS) +
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'fastapi', 'starlette', 'sqlalchemy', 'celery'})\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_class_code_and_default_message() -> None:
    exc = QualityTooLow()
    assert (exc.status_code, exc.code, exc.message, str(exc)) == (422, "test_quality_too_low",
                                                                  "the print quality is too low",
                                                                  "the print quality is too low")
    assert QualityTooLow("only 12", details={"q": 12}).to_dict() == {
        "code": "test_quality_too_low", "message": "only 12", "details": {"q": 12}}
    assert isinstance(InvalidJson(), BioError) and InvalidJson.status_code == 422


def test_stored_error_comes_back_as_its_class() -> None:
    assert error_class("test_not_a_print") is NotAPrint
    assert error_class("time_budget_exceeded") is TimeBudgetExceeded
    exc = error_from_dict({"code": "test_print_missing", "message": "gone", "details": {"id": 3}})
    assert type(exc) is PrintMissing and exc.status_code == 404 and exc.details == {"id": 3}
    ad_hoc = error_from_dict({"code": "job_not_finished", "message": "m", "status": 409})
    assert type(ad_hoc) is InternalError and (ad_hoc.code, ad_hoc.status_code) == ("job_not_finished", 409)
    assert error_from_dict(None).status_code == 500
    assert error_from_dict({"code": "worker_lost", "message": "x"}).status_code == 503
    assert issubclass(error_class("worker_lost"), ServiceUnavailable)


def test_error_responses_documents_codes_per_status() -> None:
    responses = error_responses(QualityTooLow, NotAPrint, PrintMissing, QualityTooLow)
    assert sorted(responses) == [404, 422]
    assert "`test_quality_too_low`" in responses[422]["description"]
    assert set(responses[422]["content"]["application/json"]["examples"]) == {"test_quality_too_low",
                                                                               "test_not_a_print"}
    with pytest.raises(TypeError):
        error_responses(ValueError)  # type: ignore[arg-type]

    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter()

    @router.post("/enroll", responses=error_responses(QualityTooLow, PrintMissing), operation_id="t_enroll")
    def enroll() -> dict[str, str]:
        raise QualityTooLow(details={"quality": 3})

    app.include_router(router)
    client = TestClient(app)
    resp = client.post("/enroll")
    assert resp.status_code == 422
    assert resp.json() == {"error": {"code": "test_quality_too_low", "message": "the print quality is too low",
                                     "details": {"quality": 3}}}
    doc = client.get("/openapi.json").json()["paths"]["/enroll"]["post"]["responses"]
    assert set(doc) >= {"404", "422"}
    assert doc["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "test_not_a_print" not in doc["422"]["description"]
