"""The synchronous routes (enroll, identify, verify) run their work as a job through the jobs table
(``bio_shared.run_now.run_sync``) and wait for it up to the service's time budget (``SYNC_BUDGET_S``, 20 s):
past it the client gets 503 ``time_budget_exceeded`` with the job's status URL, and the job goes on.

What a request can refuse cheaply is refused before anything is stored: an unknown event, and photos
whose header says they are not an accepted image or have too many pixels. The uploads wait for the job
as blobs, which the job deletes when it ends (or the reaper when it abandons the job)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from PIL import Image

from bio_face_recognition import schemas as S
from bio_face_recognition.exceptions import InputMissing
from bio_face_recognition.runtime import face_state
from bio_face_recognition.service import enrollment, recognition
from bio_face_recognition.service.common import Upload, decode, get_event
from bio_shared.errors import BioError
from bio_shared.identity import Identity
from bio_shared.images import ALLOWED_FORMATS
from bio_shared.jobs import JobContext
from bio_shared.run_now import run_sync
from bio_shared.runtime import ServiceRuntime

ENROLL, IDENTIFY, VERIFY = "enroll", "identify", "verify"


def _check_header(rt: ServiceRuntime, up: Upload, index: int) -> None:
    """The decoder's own refusal when the header already says no (cheap: nothing is decoded)."""
    st = rt.settings
    try:
        with Image.open(io.BytesIO(up.data)) as img:
            (width, height), fmt = img.size, img.format
        fine = fmt in ALLOWED_FORMATS and width * height <= st.max_image_pixels and min(width, height) >= \
            st.min_image_side
    except Exception:
        fine = False
    if not fine:
        try:
            decode(rt, up.data)
        except BioError as exc:
            exc.details = (exc.details if isinstance(exc.details, dict) else {}) | {"file": up.filename,
                                                                                    "index": index}
            raise


def _drop(rt: ServiceRuntime, params: dict[str, Any]) -> None:
    for item in params.get("inputs", []):
        rt.blobs.delete(item["key"])


def run_now(rt: ServiceRuntime, identity: Identity, kind: str, event_id: str, uploads: list[Upload],
            params: dict[str, Any]) -> dict[str, Any]:
    """The job's result within the time budget, or its error as the BioError it was."""
    with rt.sessions() as s:
        get_event(s, identity.account_id, event_id)
    for i, up in enumerate(uploads):
        _check_header(rt, up, i)
    inputs = [{"key": rt.blobs.put(rt.blobs.new_key(identity.account_id, "face-requests", "bin"), up.data),
               "filename": up.filename} for up in uploads]
    params = params | {"event_id": event_id, "inputs": inputs}
    try:
        return run_sync(rt.jobs, identity, kind, params, budget_s=face_state(rt).settings.sync_budget_s)
    except BioError:
        raise  # the job ran (and removed its inputs) or goes on past the budget
    except Exception:
        _drop(rt, params)  # the job could not be submitted
        raise


def _options(ctx: JobContext) -> dict[str, Any]:
    """The route's options, passed to the use case as they were given (a new option needs no change here)."""
    return {k: v for k, v in ctx.params.items() if k not in ("event_id", "inputs")}


def _enroll(rt: ServiceRuntime, ctx: JobContext, uploads: list[Upload]) -> dict[str, Any]:
    person = enrollment.enroll(rt, ctx.owner_id, ctx.params["event_id"], uploads, **_options(ctx))
    return S.FaceEnrollOut.model_validate(person).model_dump(mode="json")


def _identify(rt: ServiceRuntime, ctx: JobContext, uploads: list[Upload]) -> dict[str, Any]:
    result = recognition.identify(rt, ctx.owner_id, ctx.params["event_id"], uploads[0].data, **_options(ctx))
    return S.FaceIdentifyOut.model_validate(result).model_dump(mode="json")


def _verify(rt: ServiceRuntime, ctx: JobContext, uploads: list[Upload]) -> dict[str, Any]:
    options = _options(ctx)
    result = recognition.verify(rt, ctx.owner_id, ctx.params["event_id"], options.pop("person_id"), uploads[0].data,
                                **options)
    return S.FaceVerifyOut.model_validate(result).model_dump(mode="json")


def register_sync_jobs(rt: ServiceRuntime) -> None:
    work: dict[str, Callable[[ServiceRuntime, JobContext, list[Upload]], dict[str, Any]]] = {
        ENROLL: _enroll, IDENTIFY: _identify, VERIFY: _verify}
    for kind, fn in work.items():
        def run(ctx: JobContext, fn: Callable[..., dict[str, Any]] = fn) -> dict[str, Any]:
            try:
                inputs = ctx.params["inputs"]
                if not all(rt.blobs.exists(i["key"]) for i in inputs):
                    raise InputMissing("the uploaded photos are no longer available; send the request again")
                return fn(rt, ctx, [Upload(rt.blobs.get(i["key"]), i["filename"]) for i in inputs])
            finally:
                _drop(rt, ctx.params)

        rt.jobs.handler(kind, on_abandon=lambda params: _drop(rt, params))(run)
