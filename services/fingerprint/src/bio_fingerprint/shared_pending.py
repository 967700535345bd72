"""Local stand-ins for bio_shared pieces another branch adds (``bio_shared.text.clean_name``,
``bio_shared.jsonsafe.loads_limited``), with the same signatures and errors. Delete this module and
import the shared ones once they are merged (only service/validation.py and service/templates.py use it)."""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from bio_shared.errors import BadRequest, Unprocessable

_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_MAX_INT = 2 ** 53


def clean_name(value: str, *, field: str, max_len: int = 200) -> str:
    """NFC, stripped; no empty name, control characters or bidirectional overrides."""
    text = unicodedata.normalize("NFC", value or "").strip()
    bad = next((ch for ch in text if unicodedata.category(ch) == "Cc" or ch in _BIDI), None)
    if not text or bad is not None or len(text) > max_len:
        why = ("is empty" if not text else f"is longer than {max_len} characters" if bad is None
               else f"contains the character U+{ord(bad):04X}")
        raise Unprocessable(f"{field} {why}", code="invalid_name", details={"field": field})
    return text


def _depth(raw: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _int(text: str) -> int:
    if len(text) > 17 or abs(int(text)) > _MAX_INT:
        raise ValueError("integer outside +-2**53")
    return int(text)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_limited(raw: str | bytes, *, field: str, max_bytes: int = 1_000_000, max_depth: int = 32) -> Any:
    """JSON with bounded size and nesting (checked before parsing), no NaN/Infinity, integers within 2**53."""
    if len(raw) > max_bytes:
        raise BadRequest(f"{field} is over {max_bytes} bytes", code="invalid_json", details={"field": field})
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{field} is not UTF-8", code="invalid_json", details={"field": field}) from exc
    if _depth(text) > max_depth:
        raise BadRequest(f"{field} nests deeper than {max_depth} levels", code="invalid_json",
                         details={"field": field, "max_depth": max_depth})
    try:
        value = json.loads(text, parse_int=_int, parse_constant=_constant)
    except ValueError as exc:
        raise BadRequest(f"{field} is not valid JSON: {exc}", code="invalid_json", details={"field": field}) from exc
    _check_floats(value)
    return value


def _check_floats(value: Any, field: str = "") -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, float) and not math.isfinite(v):
            raise BadRequest("JSON numbers must be finite", code="invalid_json", details={"field": field})
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
