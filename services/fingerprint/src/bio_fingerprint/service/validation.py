"""Checks of what callers send: finger positions, subject names, rates, processing steps."""

from __future__ import annotations

from typing import Any

from bio_fingerprint.engine.template import FINGER_POSITIONS
from bio_fingerprint.exceptions import InvalidFinger, InvalidRate, InvalidSteps
from bio_shared.errors import InvalidJson
from bio_shared.jsonsafe import loads_limited
from bio_shared.text import clean_name

MAX_SUBJECT = 128  # the column's length
MAX_STEPS = 32


def check_finger(finger: int) -> int:
    if finger not in FINGER_POSITIONS:
        raise InvalidFinger()
    return finger


def check_subject(subject: str | None) -> str:
    return clean_name(subject or "", field="subject", max_len=MAX_SUBJECT)


def check_rate(rate: float | None, name: str = "fmr") -> float | None:
    if rate is not None and not (0 < rate < 1):
        raise InvalidRate(f"{name} must be between 0 and 1 (e.g. 0.001)", details={"field": name})
    return rate


def parse_steps(raw: str | None) -> list[dict[str, Any]] | None:
    """The ``steps`` form field: a short JSON list of {op, ...parameters} objects, shallow."""
    if not raw:
        return None
    try:
        steps = loads_limited(raw, field="steps", max_bytes=20_000, max_depth=3)
    except InvalidJson as exc:
        raise InvalidSteps(f"{InvalidSteps.message} ({exc.message})", details=exc.details) from exc
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise InvalidSteps("steps must be a JSON list of {op, ...parameters} objects")
    if len(steps) > MAX_STEPS:
        raise InvalidSteps(f"at most {MAX_STEPS} steps")
    return steps
