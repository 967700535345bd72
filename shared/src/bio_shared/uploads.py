"""Image uploads and the image-normalisation job every service offers.

The upload is read with a hard byte limit and fully decoded *before* a job exists, so bad input
gets its 4xx at once and leaves no row and no blob behind.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from bio_shared.app import ERROR_RESPONSES, IDENTITY_ERRORS, accepted, finished_job
from bio_shared.errors import BioError, InputMissing, JobNotFinished, JobNotFound, PayloadTooLarge
from bio_shared.identity import Identity
from bio_shared.images import IMAGE_ERRORS, DecodedImage, Mode, check_size, decode_image, encode_png
from bio_shared.jobs import JobContext
from bio_shared.runtime import ServiceRuntime
from bio_shared.schemas import JobOut
from bio_shared.web.errors import error_responses

NORMALIZE_KIND = "normalize"
Transform = Callable[[np.ndarray], np.ndarray]


async def read_upload(file: UploadFile, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` (+1 to detect overflow) whatever the client claims."""
    if file.size is not None and file.size > max_bytes:
        raise PayloadTooLarge(f"file is {file.size} bytes; the limit is {max_bytes} bytes",
                              details={"limit_bytes": max_bytes})
    data = await file.read(max_bytes + 1)
    check_size(data, max_bytes)
    return data


def decode_for(rt: ServiceRuntime[Any], data: bytes, mode: Mode) -> DecodedImage:
    s = rt.settings
    return decode_image(data, mode=mode, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels,
                        min_side=s.min_image_side)


def _output_key(rt: ServiceRuntime[Any], owner_id: str, job_id: str) -> str:
    # Derived from the job, never stored in the public result: a retry finds its own output again.
    return f"{owner_id}/{rt.name}-normalized/{job_id}.png"


def register_normalize_job(rt: ServiceRuntime[Any], transform: Transform, mode: Mode) -> None:
    """Register the handler; the router reads ``mode`` from the runtime so the two cannot disagree."""
    rt.normalize_mode = mode

    @rt.jobs.handler(NORMALIZE_KIND, on_abandon=lambda params: None if rt.blobs.delete(params["input_key"]) else None)
    def normalize(ctx: JobContext) -> dict[str, Any]:
        input_key = ctx.params["input_key"]
        output_key = _output_key(rt, ctx.owner_id, ctx.id)
        if rt.blobs.exists(input_key):
            try:
                decoded = decode_for(rt, rt.blobs.get(input_key), mode)
            except BioError:
                rt.blobs.delete(input_key)  # a permanent failure: nothing to retry with
                raise
            ctx.progress(0.3)
            png = encode_png(transform(decoded.pixels))
            rt.blobs.put(output_key, png)
            rt.blobs.delete(input_key)
        elif rt.blobs.exists(output_key):
            png = rt.blobs.get(output_key)  # an earlier attempt did the work, then its worker died
        else:
            raise InputMissing("the uploaded image is no longer available; submit it again")
        header = Image.open(io.BytesIO(png))  # reads the header only
        width, height = header.size
        channels = 1 if header.mode == "L" else 3
        return {
            "output_url": f"{rt.jobs.status_url(ctx.id)}/output",
            "width": width,
            "height": height,
            "channels": channels,
            "source_format": ctx.params.get("source_format"),
            "source_mode": ctx.params.get("source_mode"),
            "sha256": hashlib.sha256(png).hexdigest(),
            "filename": ctx.params.get("filename"),
        }


def _validate_store_submit(rt: ServiceRuntime[Any], identity: Identity, data: bytes, filename: str | None) -> Any:
    if rt.normalize_mode is None:
        raise RuntimeError(f"{rt.name}: the normalize job is not registered")
    decoded = decode_for(rt, data, rt.normalize_mode)  # bad input is refused before anything is stored
    key = rt.blobs.put(rt.blobs.new_key(identity.account_id, f"{rt.name}-uploads", "bin"), data)
    params = {"input_key": key, "filename": filename, "source_format": decoded.format,
              "source_mode": decoded.source_mode}
    try:
        return rt.jobs.submit(identity, NORMALIZE_KIND, params)
    except Exception:
        rt.blobs.delete(key)
        raise


def normalize_router(rt: ServiceRuntime[Any], what: str) -> APIRouter:
    router = APIRouter(prefix=f"{rt.prefix}/jobs", tags=[f"{rt.name}: jobs"], responses=ERROR_RESPONSES)

    @router.post(
        "/normalize", status_code=202, response_model=JobOut, operation_id=f"{rt.name}_submit_normalize_job",
        summary=f"Submit an image to be decoded and normalised ({what}) as a background job",
        responses=error_responses(*IDENTITY_ERRORS, *IMAGE_ERRORS),
    )
    async def submit_normalize(file: UploadFile = File(...),
                               identity: Identity = Depends(rt.require_identity)) -> JSONResponse:
        data = await read_upload(file, rt.settings.max_upload_bytes)
        job = await run_in_threadpool(_validate_store_submit, rt, identity, data, file.filename)
        return accepted(job, rt)

    @router.get("/{job_id}/output", summary="Download the normalised PNG of a finished job",
                operation_id=f"{rt.name}_get_normalized_output",
                response_class=Response,
                responses={200: {"content": {"image/png": {}}},
                           **error_responses(*IDENTITY_ERRORS, JobNotFound, JobNotFinished)})
    def normalized_output(job_id: str, identity: Identity = Depends(rt.require_identity)) -> Response:
        job = finished_job(rt, job_id, identity)
        return Response(rt.blobs.get(_output_key(rt, job.owner_id, job.id)), media_type="image/png")

    return router
