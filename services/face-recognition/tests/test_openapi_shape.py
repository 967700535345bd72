"""The API's shape as a client generator sees it: stable operation ids, one tag scheme, explicit unique
schema names, `total` on every list, one face-box format, the error codes each route declares, and the
identity required on every route."""

from __future__ import annotations

import re

import pytest

from bio_face_recognition.app import create_app
from bio_face_recognition.exceptions import EventNameTaken, EventNotFound, PersonNameTaken

SUBDOMAINS = {"events", "people", "enrollment", "recognition", "unknowns", "bulk"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> dict:
    from bio_face_recognition.settings import FaceRecognitionSettings

    var = tmp_path_factory.mktemp("var")
    return create_app(FaceRecognitionSettings(env="test", var_dir=var)).openapi()


def _operations(spec: dict):
    for path, ops in spec["paths"].items():
        if path.startswith("/api/v1/faces/events"):
            yield from ((path, method, op) for method, op in ops.items())


def test_operation_ids_and_tags(spec):
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == 21 and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"face_recognition_[a-z]+_[a-z_]+", i) for i in ids), ids
    tags = {t for _, _, op in _operations(spec) for t in op["tags"]}
    assert tags == {f"face_recognition: {s}" for s in SUBDOMAINS}


def test_schema_names_are_explicit_and_lists_have_total(spec):
    schemas = spec["components"]["schemas"]
    assert not [n for n in schemas if n.endswith("_") or "__" in n]
    lists = [n for n in schemas if n.startswith("Face") and n.endswith("List")]
    assert len(lists) == 3 and all({"items", "total", "limit", "offset"} <= set(schemas[n]["properties"]) for n in lists)
    assert set(schemas["FaceBox"]["properties"]) == {"x", "y", "width", "height"}
    for name in ("FaceResult", "FaceVerifyOut", "FaceImageOut", "FaceUnknownOut"):
        assert "FaceBox" in str(schemas[name]["properties"]["box"]), name
    assert schemas["FaceCandidateOut"]["properties"]["passed"]["type"] == "boolean"


def test_routes_declare_their_error_codes(spec):
    ops = {op["operationId"]: op for _, _, op in _operations(spec)}
    assert EventNameTaken.code in ops["face_recognition_create_event"]["responses"]["409"]["description"]
    add = ops["face_recognition_add_person"]["responses"]
    for status, code in (("404", EventNotFound.code), ("409", PersonNameTaken.code), ("422", "no_face"),
                         ("422", "invalid_name"), ("413", "too_many_pixels"), ("415", "not_an_image")):
        assert code in add[status]["description"], (status, code)
    assert "overlapping_entries" in ops["face_recognition_enroll_zip"]["responses"]["422"]["description"]


def test_every_route_refuses_a_request_without_identity(start):
    svc = start()
    ids = {"event_id": "0" * 32, "person_id": "1" * 32, "image_id": "2" * 32, "unknown_id": "3" * 32}
    for path, method, _ in _operations(svc.client.app.openapi()):
        r = svc.client.request(method, path.format(**ids))
        assert r.status_code == 401, (method, path, r.status_code)
