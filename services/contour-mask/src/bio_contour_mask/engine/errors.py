"""Errors the engine raises for bad input; the service turns them into 422 answers."""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """Input the engine cannot work with; ``code`` is the stable error code a caller sees."""

    def __init__(self, message: str, code: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details
