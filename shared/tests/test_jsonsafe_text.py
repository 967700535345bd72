"""loads_limited and clean_name/SafeName: hostile JSON and names are refused with clear errors."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel, ValidationError

from bio_shared.errors import BadRequest, InvalidJson, InvalidName
from bio_shared.jsonsafe import json_depth, loads_limited
from bio_shared.schemas import SafeName
from bio_shared.text import clean_name


def reason(exc: pytest.ExceptionInfo[InvalidJson]) -> str:
    assert exc.value.code == "invalid_json" and exc.value.details["field"] == "steps"
    return str(exc.value.details["reason"])


def test_valid_json_parses() -> None:
    assert loads_limited('{"a": [1, 2.5, "x]]]"], "b": null}', field="steps") == {"a": [1, 2.5, "x]]]"], "b": None}
    assert loads_limited(b'[9007199254740992, -9007199254740992]', field="steps") == [2**53, -(2**53)]
    assert loads_limited("[" * 32 + "]" * 32, field="steps") == loads_limited("[" * 32 + "]" * 32, field="steps")


def test_depth_scan_respects_strings_and_escapes() -> None:
    assert json_depth('["[[[[", "\\"[[[", {"k": [1]}]') == 3
    assert json_depth('"[[[["') == 0


def test_deep_nesting_is_refused_before_parsing_and_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidJson) as exc:
        loads_limited("[" * 100_000 + "]" * 100_000, field="steps")
    assert time.perf_counter() - start < 1.0
    assert reason(exc) == "too_deep" and isinstance(exc.value, BadRequest)
    with pytest.raises(InvalidJson) as exc:
        loads_limited("[" * 33 + "]" * 33, field="steps")
    assert reason(exc) == "too_deep"


@pytest.mark.parametrize(("raw", "why"), [
    ("[NaN]", "not_finite"), ('{"x": Infinity}', "not_finite"), ("-Infinity", "not_finite"),
    ("1e400", "not_finite"), ("[9007199254740993]", "integer_out_of_range"),
    (str(2**70), "integer_out_of_range"), ("{", "syntax"), ("", "syntax"), ("[1,]", "syntax"),
    (b"\xff\xfe[1]", "not_utf8"),
])
def test_hostile_values_are_refused(raw: str | bytes, why: str) -> None:
    with pytest.raises(InvalidJson) as exc:
        loads_limited(raw, field="steps")
    assert reason(exc) == why
    assert "object at 0x" not in exc.value.message


def test_size_limit() -> None:
    with pytest.raises(InvalidJson) as exc:
        loads_limited('"' + "a" * 2000 + '"', field="steps", max_bytes=1000)
    assert reason(exc) == "too_large"


def test_clean_name_normalises() -> None:
    assert clean_name("  Ame\u0301lie \n", field="name") == "Amélie"  # NFC: one code point for é
    assert clean_name("Zoë O'Brien-Łukasz 李", field="name") == "Zoë O'Brien-Łukasz 李"


@pytest.mark.parametrize(("value", "why"), [
    (" ", "empty"), ("", "empty"), ("\t\n", "empty"), ("a\x00b", "forbidden_character"),
    ("a\x07b", "forbidden_character"), ("evil\u202egnp.exe", "forbidden_character"),
    ("x\u2066y", "forbidden_character"), ("a\ud800", "forbidden_character"), ("x" * 201, "too_long"),
])
def test_clean_name_refuses(value: str, why: str) -> None:
    with pytest.raises(InvalidName) as exc:
        clean_name(value, field="person.name")
    assert exc.value.status_code == 422 and exc.value.code == "invalid_name"
    assert exc.value.details["reason"] == why and exc.value.details["field"] == "person.name"


class PersonIn(BaseModel):
    name: SafeName


def test_safe_name_in_a_model() -> None:
    assert PersonIn(name=" Ana ").name == "Ana"
    with pytest.raises(ValidationError) as exc:
        PersonIn(name="a\u202eb")
    assert exc.value.errors()[0]["type"] == "invalid_name"
