"""Routers of the contour mask service: submit (job or synchronous), downloads, and the shared normalize job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from bio_contour_mask import service
from bio_contour_mask.schemas import ContourJsonRequest
from bio_shared.app import ERROR_RESPONSES, accepted, finished_job
from bio_shared.errors import BioError, Unprocessable, UnsupportedMedia
from bio_shared.identity import Identity
from bio_shared.jobs import job_to_dict
from bio_shared.runtime import ServiceRuntime
from bio_shared.schemas import ErrorResponse, JobOut
from bio_shared.uploads import normalize_router, read_upload


def _inline_schema(model: type) -> dict[str, Any]:
    """A model's JSON schema with its $defs inlined (openapi_extra is not resolved against components)."""
    schema = model.model_json_schema()
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
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse}, 415: {"model": ErrorResponse},
    422: {"model": ErrorResponse, "description": "bad landmarks (count, outside the image), a label map of the "
          "wrong kind, bad options, an unreadable image; no_face from the synchronous endpoint"},
}


async def read_contour_request(request: Request, max_bytes: int) -> tuple[bytes, Any, bytes | None, Any, str | None]:
    """(image, landmarks, label map, options, filename) from multipart form data or a JSON body."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        form = await request.form(max_files=2, max_fields=10, max_part_size=4 * 1024 * 1024)
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise Unprocessable("multipart field 'file' (the image) is required", code="missing_image")
        image = await read_upload(file, max_bytes)
        label_map = form.get("label_map")
        map_bytes = None
        if isinstance(label_map, UploadFile):
            map_bytes = await read_upload(label_map, max_bytes)
        elif label_map:
            raise Unprocessable("multipart field 'label_map' must be a file", code="invalid_label_map")
        return image, form.get("landmarks"), map_bytes, form.get("options"), file.filename
    if ctype == "application/json" or ctype.endswith("+json"):
        body = await request.body()
        try:
            req = ContourJsonRequest.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
        image = service.b64decode(req.image_base64, "image_base64")
        map_bytes = service.b64decode(req.label_map_base64, "label_map_base64") if req.label_map_base64 else None
        return image, req.landmarks, map_bytes, req.options, req.filename
    raise UnsupportedMedia("send multipart/form-data (file, landmarks, label_map, options) or application/json "
                           "(image_base64, landmarks, label_map_base64, options)", code="unsupported_content_type")


def contours_router(rt: ServiceRuntime) -> APIRouter:
    router = APIRouter(prefix=rt.prefix, tags=["contours"], responses=ERROR_RESPONSES)
    max_bytes = rt.settings.max_upload_bytes

    @router.post("/jobs/contours", status_code=202, response_model=JobOut, openapi_extra=REQUEST_BODY,
                 responses=UPLOAD_ERRORS,
                 summary="Submit a face image (with optional landmarks and label map) for contour masks; 202 + job")
    async def submit_contours(request: Request, identity: Identity = Depends(rt.require_identity)) -> JSONResponse:
        image, landmarks, map_bytes, options, filename = await read_contour_request(request, max_bytes)
        inp = await run_in_threadpool(service.validate_input, rt, image, landmarks, map_bytes, options, filename)
        job = await run_in_threadpool(service.submit_contours, rt, identity, inp)
        return accepted(job, rt)

    @router.post("/extract", response_model=JobOut, openapi_extra=REQUEST_BODY, responses=UPLOAD_ERRORS,
                 summary="The synchronous variant for small images: the finished job (result with inline SVG)")
    async def extract(request: Request, identity: Identity = Depends(rt.require_identity)) -> dict[str, Any]:
        image, landmarks, map_bytes, options, filename = await read_contour_request(request, max_bytes)
        inp = await run_in_threadpool(service.validate_input, rt, image, landmarks, map_bytes, options, filename)
        job = await run_in_threadpool(service.extract_now, rt, identity, inp)
        return job_to_dict(job, rt.jobs)

    def download(what: str, summary: str) -> None:
        media = service.ARTIFACTS[what][1]

        @router.get(f"/jobs/{{job_id}}/{what}", summary=summary, response_class=Response,
                    responses={200: {"content": {media: {}}}}, name=f"contours_{what}")
        def get_artifact(job_id: str, identity: Identity = Depends(rt.require_identity)) -> Response:
            job = finished_job(rt, job_id, identity)
            data, media_type = service.artifact(rt, job, what)
            return Response(data, media_type=media_type)

    download("svg", "The SVG of a finished contour job (one <path id=region> per region)")
    download("png", "The colour-coded PNG mask of a finished contour job (RGBA, transparent background)")
    download("json", "The polygons of a finished contour job, per region, in its output space")
    download("aligned", "The aligned (upright, cropped) face image of a finished contour job, JPEG")

    @router.get("/jobs/{job_id}/masks/{region}",
                summary="One region of a finished contour job as a black and white PNG",
                response_class=Response, responses={200: {"content": {"image/png": {}}}})
    def get_mask(job_id: str, region: str, identity: Identity = Depends(rt.require_identity)) -> Response:
        job = finished_job(rt, job_id, identity)
        if job.kind != service.CONTOURS_KIND:
            raise BioError("this job has no regions", code="not_a_contour_job", status_code=404)
        png = service.region_mask(rt, job, region.removesuffix(".png"))
        return Response(png, media_type="image/png")

    return router


def routers(rt: ServiceRuntime) -> list[APIRouter]:
    what = f"RGB, longer side at most {rt.settings.max_side} px"
    return [normalize_router(rt, what=what), contours_router(rt)]
