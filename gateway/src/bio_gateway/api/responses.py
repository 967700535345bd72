"""The error statuses a gateway route declares beyond the common ones (401, 422, 429, ... are added
to every operation of the merged document by bio_gateway.openapi)."""

from __future__ import annotations

from typing import Any

from bio_shared.schemas import ErrorResponse


def errors(**codes_by_status: str) -> dict[int | str, dict[str, Any]]:
    """``errors(s403="registration_disabled", s409="email_taken")`` -> FastAPI ``responses=``."""
    out: dict[int | str, dict[str, Any]] = {}
    for key, codes in codes_by_status.items():
        listed = ", ".join(f"`{c.strip()}`" for c in codes.split(","))
        out[int(key.lstrip("s"))] = {"model": ErrorResponse, "description": f"Error codes: {listed}"}
    return out
