"""Downloads of a finished contour job's stored outputs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bio_contour_mask import exceptions as E
from bio_contour_mask.api.deps import IdentityDep, RuntimeDep, require_identity
from bio_contour_mask.runtime import PREFIX
from bio_contour_mask.service.downloads import ARTIFACTS, artifact, region_mask
from bio_shared.app import ERROR_RESPONSES, finished_job
from bio_shared.errors import Conflict, NotFound
from bio_shared.web.errors import error_responses

router = APIRouter(prefix=f"{PREFIX}/jobs", tags=["contour_mask: outputs"], responses=ERROR_RESPONSES,
                   dependencies=[Depends(require_identity)])
JobId = Annotated[str, Path(description="the job id")]
OUTPUT_ERRORS = error_responses(E.OutputNotFound, NotFound, Conflict)
SUMMARIES = {
    "svg": "The SVG of a finished contour job (one <path id=region> per region)",
    "png": "The colour-coded PNG mask of a finished contour job (RGBA, transparent background)",
    "json": "The polygons of a finished contour job, per region, in its output space",
    "aligned": "The aligned (upright, cropped) face image of a finished contour job, JPEG",
}


def _download_route(what: str) -> None:
    media = ARTIFACTS[what][1]

    @router.get(f"/{{job_id}}/{what}", summary=SUMMARIES[what], response_class=Response, name=f"contours_{what}",
                operation_id=f"contour_mask_get_{what}", responses={200: {"content": {media: {}}}, **OUTPUT_ERRORS})
    async def download(job_id: JobId, rt: RuntimeDep, identity: IdentityDep) -> Response:
        job = await run_in_threadpool(finished_job, rt, job_id, identity)
        data, media_type = await run_in_threadpool(artifact, rt, job, what)
        return Response(data, media_type=media_type)


for _what in ARTIFACTS:
    _download_route(_what)


@router.get("/{job_id}/masks/{region}", summary="One region of a finished contour job as a black and white PNG",
            response_class=Response, operation_id="contour_mask_get_region_mask",
            responses={200: {"content": {"image/png": {}}},
                       **error_responses(E.OutputNotFound, E.RegionNotFound, E.NotAContourJob, NotFound, Conflict)})
async def get_mask(job_id: JobId, region: Annotated[str, Path(description="region name, e.g. left_eye")], rt: RuntimeDep,
                   identity: IdentityDep) -> Response:
    job = await run_in_threadpool(finished_job, rt, job_id, identity)
    png = await run_in_threadpool(region_mask, rt, job, region.removesuffix(".png"))
    return Response(png, media_type="image/png")
