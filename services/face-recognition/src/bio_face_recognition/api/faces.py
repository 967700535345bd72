"""Events, people, identification, verification, unknown faces and bulk enrollment (thin routes)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bio_face_recognition import schemas as S
from bio_face_recognition.service import FaceService, Upload, submit_zip
from bio_shared.app import ERROR_RESPONSES, accepted
from bio_shared.errors import BadRequest
from bio_shared.identity import Identity
from bio_shared.runtime import ServiceRuntime
from bio_shared.schemas import ErrorResponse, JobOut
from bio_shared.uploads import read_upload

UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "File too large (bytes or pixels)"},
    415: {"model": ErrorResponse, "description": "Not an image"},
    422: {"model": ErrorResponse, "description": "Unreadable image, or a refused face: no_face, multiple_faces, "
          "face_too_small, face_too_blurred"},
}


def faces_router(rt: ServiceRuntime) -> APIRouter:
    svc: FaceService = rt.options["faces"]
    router = APIRouter(prefix=f"{rt.prefix}/events", tags=["face recognition"], responses=ERROR_RESPONSES)
    me = Depends(rt.require_identity)
    max_bytes = rt.settings.max_upload_bytes

    async def uploads(files: list[UploadFile]) -> list[Upload]:
        if len(files) > rt.settings.max_images_per_request:
            raise BadRequest(f"at most {rt.settings.max_images_per_request} images per request",
                             code="too_many_images")
        return [Upload(await read_upload(f, max_bytes), f.filename) for f in files]

    # -- events ----------------------------------------------------------------------------------
    @router.post("", status_code=201, response_model=S.EventOut, summary="Create an event (gallery)",
                 responses={409: {"model": ErrorResponse}})
    def create_event(body: S.EventCreate, identity: Identity = me) -> dict[str, Any]:
        settings = body.model_dump(exclude={"name"})
        return svc.create_event(identity.account_id, body.name, settings)

    @router.get("", response_model=S.EventList, summary="The caller's events with person and image counts")
    def list_events(identity: Identity = me, limit: int = Query(50, ge=1, le=500),
                    offset: int = Query(0, ge=0)) -> dict[str, Any]:
        return svc.list_events(identity.account_id, limit, offset)

    @router.get("/{event_id}", response_model=S.EventOut, summary="One event")
    def get_event(event_id: str, identity: Identity = me) -> dict[str, Any]:
        return svc.get_event(identity.account_id, event_id)

    @router.patch("/{event_id}", response_model=S.EventOut, summary="Rename an event or change its settings",
                  responses={409: {"model": ErrorResponse}})
    def update_event(event_id: str, body: S.EventUpdate, identity: Identity = me) -> dict[str, Any]:
        return svc.update_event(identity.account_id, event_id, body.model_dump(exclude_unset=True))

    @router.delete("/{event_id}", response_model=S.Deleted,
                   summary="Delete an event with its people, embeddings, stored images and unknown faces")
    def delete_event(event_id: str, identity: Identity = me) -> dict[str, Any]:
        return svc.delete_event(identity.account_id, event_id)

    @router.post("/{event_id}/reset", response_model=S.ResetOut,
                 summary="Remove every person of the event; the event and its settings stay")
    def reset_event(event_id: str, identity: Identity = me) -> dict[str, Any]:
        return svc.reset_event(identity.account_id, event_id)

    # -- people ----------------------------------------------------------------------------------
    @router.post("/{event_id}/people", status_code=201, response_model=S.EnrollOut,
                 summary="Add a person with one or more face photos (each photo is one embedding)",
                 responses={**UPLOAD_ERRORS, 409: {"model": ErrorResponse}})
    async def add_person(event_id: str, name: str = Form(..., min_length=1, max_length=200),
                         files: list[UploadFile] = File(..., description="one face per photo"),
                         largest: bool = Form(False, description="several faces: take the largest"),
                         refuse_duplicates: bool | None = Form(None), identity: Identity = me) -> dict[str, Any]:
        ups = await uploads(files)
        return await run_in_threadpool(svc.enroll, identity.account_id, event_id, ups, name=name.strip(),
                                       largest=largest, refuse_duplicates=refuse_duplicates)

    @router.get("/{event_id}/people", response_model=S.PersonList, summary="People of the event (paginated)")
    def list_people(event_id: str, identity: Identity = me, limit: int = Query(50, ge=1, le=500),
                    offset: int = Query(0, ge=0), name: str | None = Query(None, max_length=200)) -> dict[str, Any]:
        return svc.list_people(identity.account_id, event_id, limit, offset, name)

    @router.get("/{event_id}/people/{person_id}", response_model=S.PersonOut, summary="One person and its images")
    def get_person(event_id: str, person_id: str, identity: Identity = me) -> dict[str, Any]:
        return svc.get_person(identity.account_id, event_id, person_id)

    @router.patch("/{event_id}/people/{person_id}", response_model=S.PersonOut, summary="Rename a person",
                  responses={409: {"model": ErrorResponse}})
    def rename_person(event_id: str, person_id: str, body: S.Rename, identity: Identity = me) -> dict[str, Any]:
        return svc.rename_person(identity.account_id, event_id, person_id, body.name)

    @router.delete("/{event_id}/people/{person_id}", response_model=S.Deleted,
                   summary="Delete a person with its embeddings and stored images")
    def delete_person(event_id: str, person_id: str, identity: Identity = me) -> dict[str, Any]:
        return svc.delete_person(identity.account_id, event_id, person_id)

    @router.post("/{event_id}/people/{person_id}/images", status_code=201, response_model=S.EnrollOut,
                 summary="Add face photos to a person", responses={**UPLOAD_ERRORS, 409: {"model": ErrorResponse}})
    async def add_images(event_id: str, person_id: str, files: list[UploadFile] = File(...),
                         largest: bool = Form(False), refuse_duplicates: bool | None = Form(None),
                         identity: Identity = me) -> dict[str, Any]:
        ups = await uploads(files)
        return await run_in_threadpool(svc.enroll, identity.account_id, event_id, ups, person_id=person_id,
                                       largest=largest, refuse_duplicates=refuse_duplicates)

    @router.get("/{event_id}/people/{person_id}/images/{image_id}", response_class=Response,
                summary="The stored photo of one image (events that keep images)",
                responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})
    def get_image(event_id: str, person_id: str, image_id: str, identity: Identity = me) -> Response:
        data, media = svc.image_bytes(identity.account_id, event_id, person_id, image_id)
        return Response(data, media_type=media)

    @router.delete("/{event_id}/people/{person_id}/images/{image_id}", response_model=S.Deleted,
                   summary="Delete one image (embedding and stored photo) of a person")
    def delete_image(event_id: str, person_id: str, image_id: str, identity: Identity = me) -> dict[str, Any]:
        return svc.delete_image(identity.account_id, event_id, person_id, image_id)

    # -- recognition -----------------------------------------------------------------------------
    @router.post("/{event_id}/identify", response_model=S.IdentifyOut, responses=UPLOAD_ERRORS,
                 summary="Every face of the probe against the event: box, best match, top-k candidates")
    async def identify(event_id: str, file: UploadFile = File(...),
                       threshold: float | None = Form(None, gt=0, le=2, description="overrides the event's"),
                       top_k: int | None = Form(None, ge=1, le=100),
                       store_unknowns: bool = Form(True, description="keep unmatched faces as unknowns"),
                       detector: Literal["hog", "cnn"] | None = Form(None, description="overrides the event's"),
                       identity: Identity = me) -> dict[str, Any]:
        data = await read_upload(file, max_bytes)
        return await run_in_threadpool(svc.identify, identity.account_id, event_id, data, threshold=threshold,
                                       top_k=top_k, store_unknowns=store_unknowns, detector=detector)

    @router.post("/{event_id}/people/{person_id}/verify", response_model=S.VerifyOut, responses=UPLOAD_ERRORS,
                 summary="Is the (largest) face of the probe this person?")
    async def verify(event_id: str, person_id: str, file: UploadFile = File(...),
                     threshold: float | None = Form(None, gt=0, le=2),
                     detector: Literal["hog", "cnn"] | None = Form(None, description="overrides the event's"),
                     identity: Identity = me) -> dict[str, Any]:
        data = await read_upload(file, max_bytes)
        return await run_in_threadpool(svc.verify, identity.account_id, event_id, person_id, data,
                                       threshold=threshold, detector=detector)

    # -- unknown faces ---------------------------------------------------------------------------
    @router.get("/{event_id}/unknowns", response_model=S.UnknownList,
                summary="Faces that matched nobody, newest first (kept for the event's retention period)")
    def list_unknowns(event_id: str, identity: Identity = me, limit: int = Query(50, ge=1, le=500),
                      offset: int = Query(0, ge=0)) -> dict[str, Any]:
        return svc.list_unknowns(identity.account_id, event_id, limit, offset)

    @router.get("/{event_id}/unknowns/{unknown_id}/crop", response_class=Response, summary="The unknown face's crop",
                responses={200: {"content": {"image/jpeg": {}}}})
    def unknown_crop(event_id: str, unknown_id: str, identity: Identity = me) -> Response:
        return Response(svc.unknown_crop(identity.account_id, event_id, unknown_id), media_type="image/jpeg")

    @router.post("/{event_id}/unknowns/{unknown_id}/confirm", status_code=201, response_model=S.PersonOut,
                 summary="Enroll an unknown face as a new person (name) or into an existing one (person_id)",
                 responses={409: {"model": ErrorResponse}})
    def confirm_unknown(event_id: str, unknown_id: str, body: S.Confirm, identity: Identity = me) -> dict[str, Any]:
        return svc.confirm_unknown(identity.account_id, event_id, unknown_id, person_id=body.person_id,
                                   name=body.name)

    @router.delete("/{event_id}/unknowns/{unknown_id}", response_model=S.Deleted, summary="Discard an unknown face")
    def discard_unknown(event_id: str, unknown_id: str, identity: Identity = me) -> dict[str, Any]:
        return svc.discard_unknown(identity.account_id, event_id, unknown_id)

    # -- bulk ------------------------------------------------------------------------------------
    @router.post("/{event_id}/enroll-zip", status_code=202, response_model=JobOut,
                 summary="Bulk enrollment from a zip (one folder per person) as a background job with a "
                 "per-file report", responses={413: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
    async def enroll_zip(event_id: str, file: UploadFile = File(...), largest: bool = Form(False),
                         identity: Identity = me) -> JSONResponse:
        data = await read_upload(file, max_bytes)
        job = await run_in_threadpool(submit_zip, rt, svc, identity, event_id, data, file.filename, largest)
        return accepted(job, rt)

    return router
