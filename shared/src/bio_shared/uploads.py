"""Image uploads and the image-normalisation job every service offers.

The upload is read with a hard byte limit and fully decoded *before* a job exists, so bad input
gets its 4xx at once and leaves no row and no blob behind.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np
from fastapi import APIRouter, Depends, File, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bio_shared.app import ERROR_RESPONSES, accepted, finished_job
from bio_shared.errors import PayloadTooLarge
from bio_shared.identity import Identity
from bio_shared.images import DecodedImage, Mode, check_size, decode_image, encode_png
from bio_shared.jobs import JobContext
from bio_shared.runtime import ServiceRuntime
from bio_shared.schemas import ErrorResponse, JobOut

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


def decode_for(rt: ServiceRuntime, data: bytes, mode: Mode) -> DecodedImage:
    s = rt.settings
    return decode_image(data, mode=mode, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels,
                        min_side=s.min_image_side)


def register_normalize_job(rt: ServiceRuntime, transform: Transform, mode: Mode) -> None:
    @rt.jobs.handler(NORMALIZE_KIND)
    def normalize(ctx: JobContext) -> dict[str, Any]:
        input_key = ctx.params["input_key"]
        decoded = decode_for(rt, rt.blobs.get(input_key), mode)
        ctx.progress(0.3)
        out = transform(decoded.pixels)
        png = encode_png(out)
        output_key = rt.blobs.put(rt.blobs.new_key(ctx.owner_id, f"{rt.name}-normalized", "png"), png)
        rt.blobs.delete(input_key)
        return {
            "output_key": output_key,
            "output_url": f"{rt.jobs.status_url(ctx.id)}/output",
            "width": int(out.shape[1]),
            "height": int(out.shape[0]),
            "channels": 1 if out.ndim == 2 else int(out.shape[2]),
            "source_format": decoded.format,
            "source_mode": decoded.source_mode,
            "sha256": hashlib.sha256(png).hexdigest(),
            "filename": ctx.params.get("filename"),
        }


def _validate_store_submit(rt: ServiceRuntime, identity: Identity, data: bytes, mode: Mode,
                           filename: str | None) -> Any:
    decode_for(rt, data, mode)  # reject bad input now, before anything is stored
    key = rt.blobs.put(rt.blobs.new_key(identity.account_id, f"{rt.name}-uploads", "bin"), data)
    try:
        return rt.jobs.submit(identity, NORMALIZE_KIND, {"input_key": key, "filename": filename})
    except Exception:
        rt.blobs.delete(key)
        raise


def normalize_router(rt: ServiceRuntime, mode: Mode, what: str) -> APIRouter:
    router = APIRouter(prefix=f"{rt.prefix}/jobs", tags=[f"{rt.name} jobs"], responses=ERROR_RESPONSES)

    @router.post(
        "/normalize", status_code=202, response_model=JobOut,
        summary=f"Submit an image to be decoded and normalised ({what}) as a background job",
        responses={413: {"model": ErrorResponse}, 415: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
    )
    async def submit_normalize(file: UploadFile = File(...),
                               identity: Identity = Depends(rt.require_identity)) -> JSONResponse:
        data = await read_upload(file, rt.settings.max_upload_bytes)
        job = await run_in_threadpool(_validate_store_submit, rt, identity, data, mode, file.filename)
        return accepted(job, rt)

    @router.get("/{job_id}/output", summary="Download the normalised PNG of a finished job",
                response_class=Response, responses={200: {"content": {"image/png": {}}}})
    def normalized_output(job_id: str, identity: Identity = Depends(rt.require_identity)) -> Response:
        job = finished_job(rt, job_id, identity)
        return Response(rt.blobs.get(job.result["output_key"]), media_type="image/png")

    return router
