"""create_app(settings) -> FastAPI for the contour mask service."""

from fastapi import FastAPI

from bio_contour_mask.api import routers
from bio_contour_mask.engine.detect import models
from bio_contour_mask.models import Job
from bio_contour_mask.runtime import NAME, PREFIX, ContourMaskState, ContourRuntime
from bio_contour_mask.service.jobs import register_jobs
from bio_contour_mask.settings import ContourMaskSettings
from bio_shared.app import create_service_app
from bio_shared.runtime import build_runtime
from bio_shared.services import ServiceSpec

DESCRIPTION = """SVG contour masks of facial regions from landmarks and CelebAMask-HQ label maps.

* **Submit**: `POST /api/v1/contours/jobs/contours` (202 + job; poll `GET /api/v1/contours/jobs/{id}`) or
  `POST /api/v1/contours/extract` (synchronous, small images: the same job, waited for within `sync_budget_s`;
  503 `time_budget_exceeded` with the job's status URL when it runs longer). Body: multipart (`file`, optional
  `landmarks` JSON, `label_map` PNG, `options` JSON) or JSON (`image_base64`, `landmarks`, `label_map_base64`,
  `options`).
* **Landmarks**: 68 points (dlib / iBUG 300-W) or 468 / 478 points (MediaPipe face mesh), told apart by their
  count, in image pixels (or `options.landmarks_normalized`). Without them dlib finds the largest face. Point sets
  no face has (mostly coincident, collinear, a few pixels big) are refused with 422 `degenerate_landmarks`.
* **Label map**: 19 CelebAMask-HQ classes, any size with the image's aspect ratio (scaled with nearest neighbour);
  the class order (face-parsing/BiSeNet or CelebAMask-HQ's g_mask.py) is recognised from the face geometry or
  set with `options.label_order`.
* **Left and right are the subject's**: `left_eye` is the person's left eye, on the right of a frontal photo.
* **Coordinates**: pixels, (0, 0) the top-left corner of the top-left pixel. `aligned` results live in the upright
  square crop; `transform.aligned_to_original` maps them back.
* **Outputs** (stored, downloadable): `/jobs/{id}/svg` (one `<path id=region class="region ...">` per region,
  even-odd fill), `/png` (colour-coded), `/masks/{region}` (black and white), `/json` (polygons, landmarks),
  `/aligned` (the aligned face).
* **Cache**: a perceptual hash of the image plus a hash of landmarks, map and options; a re-encoded or slightly
  resized copy returns the stored result (`result.cache = "hit"`).
"""


def build(settings: ContourMaskSettings | None = None) -> ContourRuntime:
    settings = settings or ContourMaskSettings()
    rt: ContourRuntime = build_runtime(NAME, "bio_contour_mask", PREFIX, settings, Job,
                                       state=ContourMaskState(settings=settings))
    register_jobs(rt)
    return rt


def load_models(rt: ContourRuntime) -> None:
    rt.state.models = models()


def create_app(settings: ContourMaskSettings | None = None) -> FastAPI:
    rt = build(settings)
    return create_service_app(rt, title="Contour mask service", routers=routers(rt),
                              on_startup=lambda: load_models(rt), description=DESCRIPTION)


SERVICE = ServiceSpec(name=NAME, prefix=PREFIX, package="bio_contour_mask", create_app=create_app,
                      settings_cls=ContourMaskSettings)
