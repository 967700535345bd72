"""Reading the console's own forms: uploads to pass on to the API, optional numbers and checkboxes."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile

Upload = tuple[str, tuple[str, bytes, str]]


async def uploads(form: FormData, field: str, as_field: str | None = None) -> list[Upload]:
    """The non-empty files of a file input, as httpx ``files=`` entries (browsers send an empty part
    when nothing was chosen)."""
    out: list[Upload] = []
    for item in form.getlist(field):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read()
            out.append((as_field or field, (item.filename, data, item.content_type or "application/octet-stream")))
    return out


def text(form: FormData, field: str) -> str:
    value = form.get(field)
    return value.strip() if isinstance(value, str) else ""


def optional_number(form: FormData, field: str, kind: type = float) -> Any:
    """A number field left empty means "use the platform's default"; a non-number is sent as is so
    that the API's own validation answers it."""
    raw = text(form, field)
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        return raw


def checkbox(form: FormData, field: str) -> bool:
    return form.get(field) in ("on", "true", "1")
