"""Reading a contour request: multipart form data or a JSON body, with its OpenAPI description."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from fastapi import Request
from fastapi import UploadFile as FastApiUpload
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from bio_contour_mask.exceptions import InvalidLabelMap, MissingImage, UnsupportedContentType
from bio_contour_mask.schemas import ContourJsonRequest
from bio_contour_mask.service.inputs import b64decode
from bio_shared.uploads import read_upload

FIELD_LIMIT = 4 * 1024 * 1024  # a landmarks or options form field


@dataclass
class ContourRequest:
    image: bytes
    landmarks: Any
    label_map: bytes | None
    options: Any
    filename: str | None


def _inline_schema(model: type) -> dict[str, Any]:
    """A model's JSON schema with its $defs inlined (openapi_extra is not resolved against components)."""
    schema = model.model_json_schema()  # type: ignore[attr-defined]
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.rsplit("/", 1)[1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "the face image"},
                    "landmarks": {"type": "string", "description": "JSON list of 68, 468 or 478 {x, y} points"},
                    "label_map": {"type": "string", "format": "binary",
                                  "description": "CelebAMask-HQ label map PNG (classes 0-18), any size"},
                    "options": {"type": "string", "description": "JSON object, see ContourOptions"},
                },
            }},
            "application/json": {"schema": _inline_schema(ContourJsonRequest)},
        },
    }
}


async def _from_form(request: Request, max_bytes: int) -> ContourRequest:
    form = await request.form(max_files=2, max_fields=10, max_part_size=FIELD_LIMIT)
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise MissingImage("multipart field 'file' (the image) is required")
    image = await read_upload(cast(FastApiUpload, file), max_bytes)
    label_map = form.get("label_map")
    map_bytes = None
    if isinstance(label_map, UploadFile):
        map_bytes = await read_upload(cast(FastApiUpload, label_map), max_bytes)
    elif label_map:
        raise InvalidLabelMap("multipart field 'label_map' must be a file")
    return ContourRequest(image, form.get("landmarks"), map_bytes, form.get("options"), file.filename)


async def read_contour_request(request: Request, max_bytes: int) -> ContourRequest:
    """(image, landmarks, label map, options, filename) from multipart form data or a JSON body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _from_form(request, max_bytes)
    if ctype == "application/json" or ctype.endswith("+json"):
        body = await request.body()
        try:
            req = ContourJsonRequest.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_context=False,
                                                    include_input=False)) from None
        image = b64decode(req.image_base64, "image_base64")
        map_bytes = b64decode(req.label_map_base64, "label_map_base64") if req.label_map_base64 else None
        return ContourRequest(image, req.landmarks, map_bytes, req.options, req.filename)
    raise UnsupportedContentType("send multipart/form-data (file, landmarks, label_map, options) or application/json "
                                 "(image_base64, landmarks, label_map_base64, options)")
