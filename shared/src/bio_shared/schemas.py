"""Pydantic models shared by every API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from bio_shared.errors import InvalidName
from bio_shared.text import clean_name

T = TypeVar("T")


def _safe_name(value: str) -> str:
    try:
        return clean_name(value, field="name")
    except InvalidName as exc:  # a validation error, so FastAPI answers 422 with the field's location
        raise PydanticCustomError("invalid_name", exc.message.replace("name: ", "", 1)) from exc


# A person/event/image name: NFC, stripped, no control or bidirectional-override characters.
SafeName = Annotated[str, AfterValidator(_safe_name)]


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_an_image"])
    message: str = Field(examples=["the file is not a supported image (JPEG, PNG, TIFF, WebP, BMP, GIF)"])
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


ErrorOut = ErrorResponse  # the name the shared interfaces use


class Page(BaseModel, Generic[T]):
    """One page of a list. Subclass it with an explicit name so OpenAPI shows no generated one:
    ``class PersonPage(Page[PersonOut]): pass``."""

    items: list[T]
    total: int = Field(ge=0, description="How many items the whole list has")
    limit: int
    offset: int


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


class JobList(Page[JobOut]):
    pass
