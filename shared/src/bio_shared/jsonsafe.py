"""JSON from clients, parsed with bounds: size, nesting depth (checked before parsing, so a deeply
nested value never reaches the recursive parser), finite numbers and integers a double holds exactly."""

from __future__ import annotations

import json
import math
from typing import Any

from bio_shared.errors import InvalidJson

MAX_SAFE_INT = 2**53


def _refuse(field: str, reason: str, message: str, **extra: Any) -> InvalidJson:
    return InvalidJson(f"{field}: {message}", details={"field": field, "reason": reason, **extra})


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in ``text``, skipping brackets inside strings (linear)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
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


def loads_limited(raw: str | bytes, *, field: str, max_bytes: int = 1_000_000, max_depth: int = 32) -> Any:
    """Parse one client JSON value or raise :class:`~bio_shared.errors.InvalidJson` (a BadRequest with
    ``code="invalid_json"`` and ``details={"field", "reason", ...}``)."""
    size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise _refuse(field, "too_large", f"JSON is {size} bytes; the limit is {max_bytes}", limit_bytes=max_bytes)
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _refuse(field, "not_utf8", "JSON is not valid UTF-8") from exc
    else:
        text = raw
    depth = json_depth(text)
    if depth > max_depth:
        raise _refuse(field, "too_deep", f"JSON nests {depth} levels; the limit is {max_depth}",
                      limit_depth=max_depth)

    def constant(name: str) -> Any:
        raise _refuse(field, "not_finite", f"{name} is not allowed in JSON")

    def integer(digits: str) -> int:
        if len(digits) > 20 or abs(int(digits)) > MAX_SAFE_INT:
            raise _refuse(field, "integer_out_of_range", "integers must lie within +-2**53")
        return int(digits)

    def real(digits: str) -> float:
        value = float(digits)
        if not math.isfinite(value):
            raise _refuse(field, "not_finite", "numbers must be finite")
        return value

    try:
        return json.loads(text, parse_constant=constant, parse_int=integer, parse_float=real)
    except InvalidJson:
        raise
    except (ValueError, RecursionError) as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else "malformed JSON"
        raise _refuse(field, "syntax", f"not valid JSON ({msg})") from exc
