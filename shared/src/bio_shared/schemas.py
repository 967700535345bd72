"""Pydantic models shared by every API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_an_image"])
    message: str = Field(examples=["the file is not a supported image (JPEG, PNG, TIFF, WebP, BMP, GIF)"])
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["pending", "running", "succeeded", "failed"]
    progress: float = Field(ge=0, le=1)
    attempts: int
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    status_url: str


class JobList(BaseModel):
    items: list[JobOut]
