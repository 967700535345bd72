"""Thin routers of the fingerprint service: parse, call service.py, shape the answer."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bio_fingerprint import schemas, service
from bio_fingerprint.engine.template import TYPE_NAMES
from bio_shared.app import ERROR_RESPONSES, accepted
from bio_shared.errors import BadRequest
from bio_shared.identity import Identity, require_admin
from bio_shared.runtime import ServiceRuntime
from bio_shared.schemas import ErrorResponse, JobOut
from bio_shared.uploads import normalize_router, read_upload

BAD_INPUT = {c: {"model": ErrorResponse} for c in (400, 413, 415, 422)}


def _steps(raw: str | None) -> list[dict] | None:
    if not raw:
        return None
    try:
        steps = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest("steps must be a JSON list like [{\"op\": \"clahe\", \"clip_limit\": 2}]",
                         code="invalid_steps") from exc
    if not isinstance(steps, list):
        raise BadRequest("steps must be a JSON list of {op, ...parameters} objects", code="invalid_steps")
    return steps


def _fmr(fmr: float | None) -> float | None:
    if fmr is not None and not (0 < fmr < 1):
        raise BadRequest("fmr must be between 0 and 1 (e.g. 0.001)", code="invalid_fmr")
    return fmr


async def _files(files: list[UploadFile], max_bytes: int) -> list[tuple[bytes, str | None]]:
    return [(await read_upload(f, max_bytes), f.filename) for f in files]


def _minutiae_list(m: Any) -> list[dict[str, Any]]:
    return [{"x": float(x), "y": float(y), "direction": round(float(t), 5), "type": TYPE_NAMES.get(int(ty), "other"),
             "quality": int(q)} for x, y, t, ty, q in m]


def routers(rt: ServiceRuntime) -> list[APIRouter]:
    p = rt.prefix
    r = APIRouter(prefix=p, tags=["fingerprint"], responses=ERROR_RESPONSES)
    auth = Depends(rt.require_identity)
    maxb = rt.settings.max_upload_bytes

    # -- processing ------------------------------------------------------------------------------
    @r.post("/jobs/process", status_code=202, response_model=JobOut, responses=BAD_INPUT,
            summary="Batch: process (and optionally enroll) one or many prints as a background job")
    async def submit_process(files: list[UploadFile] = File(...), steps: str | None = Form(None),
                             enhancement: str | None = Form(None, description="classic or learned"),
                             subject: str | None = Form(None, description="enroll every print under this subject"),
                             finger: int = Form(0), dpi: int = Form(500, ge=100, le=2000),
                             identity: Identity = auth) -> JSONResponse:
        options: dict[str, Any] = {"steps": _steps(steps), "enhancement": enhancement, "dpi": dpi}
        if enhancement:
            service.engine(rt).methods(enhancement)
        if subject:
            options.update(subject=service.check_subject(subject), finger=service.check_finger(finger))
        data = await _files(files, maxb)
        job = await run_in_threadpool(service.submit_batch, rt, identity, data, options)
        return accepted(job, rt)

    @r.post("/extract", response_model=schemas.ExtractOut, responses=BAD_INPUT,
            summary="Process one print now: enhanced image, minutiae and quality (stored as an output)")
    async def extract(file: UploadFile = File(...), steps: str | None = Form(None),
                      enhancement: str | None = Form(None), dpi: int = Form(500, ge=100, le=2000),
                      identity: Identity = auth) -> dict[str, Any]:
        data = await read_upload(file, maxb)
        out, result = await run_in_threadpool(service.process_bytes, rt, identity.account_id, data, file.filename,
                                              steps=_steps(steps), preset=enhancement, dpi=dpi)
        return {"output": service.output_dict(rt, out), "quality": result.quality.to_dict(),
                "minutiae": _minutiae_list(result.minutiae)}

    @r.post("/enroll", status_code=201, response_model=schemas.EnrollOut, responses=BAD_INPUT,
            summary="Process and enroll a few impressions of one finger now (422 under the quality minimum)")
    async def enroll(files: list[UploadFile] = File(...), subject: str = Form(...), finger: int = Form(0),
                     steps: str | None = Form(None), enhancement: str | None = Form(None),
                     dpi: int = Form(500, ge=100, le=2000), identity: Identity = auth) -> dict[str, Any]:
        if len(files) > rt.settings.sync_max_files:
            raise BadRequest(f"at most {rt.settings.sync_max_files} files per synchronous call; use POST "
                             f"{p}/jobs/process", code="too_many_files")
        data = await _files(files, maxb)
        return await run_in_threadpool(service.process_and_enroll, rt, identity, data, subject, finger,
                                       _steps(steps), enhancement, dpi)

    # -- outputs ---------------------------------------------------------------------------------
    @r.get("/outputs", response_model=schemas.OutputList, summary="Processed outputs of the caller, newest first")
    def list_outputs(limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0),
                     job_id: str | None = Query(None), identity: Identity = auth) -> dict[str, Any]:
        return {"items": [service.output_dict(rt, o) for o in service.list_outputs(rt, identity, limit, offset, job_id)]}

    @r.get("/outputs/{output_id}", response_model=schemas.OutputOut)
    def get_output(output_id: str, identity: Identity = auth) -> dict[str, Any]:
        return service.output_dict(rt, service.get_output(rt, identity, output_id))

    @r.get("/outputs/{output_id}/image", response_class=Response, responses={200: {"content": {"image/png": {}}}},
           summary="The enhanced image (PNG, ridges dark)")
    def output_image(output_id: str, identity: Identity = auth) -> Response:
        row = service.get_output(rt, identity, output_id)
        return Response(rt.blobs.get(row.image_key), media_type="image/png")

    @r.get("/outputs/{output_id}/template", summary="The output's minutiae template (iso or json)",
           responses={200: {"content": {"application/octet-stream": {}, "application/json": {}}}})
    def output_template(output_id: str, format: str = Query("json", pattern="^(iso|json)$"),
                        identity: Identity = auth) -> Response:
        tpl = service.output_template(service.get_output(rt, identity, output_id))
        return _template_response(tpl, format, output_id)

    @r.delete("/outputs/{output_id}", status_code=204)
    def delete_output(output_id: str, identity: Identity = auth) -> Response:
        service.delete_output(rt, identity, output_id)
        return Response(status_code=204)

    # -- templates -------------------------------------------------------------------------------
    @r.get("/templates", response_model=schemas.TemplateList, summary="Enrolled templates of the caller")
    def list_templates(subject: str | None = Query(None), finger: int | None = Query(None, ge=0, le=10),
                       limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
                       identity: Identity = auth) -> dict[str, Any]:
        rows = service.list_templates(rt, identity, subject, finger, limit, offset)
        return {"items": [service.template_dict(t) for t in rows]}

    @r.get("/templates/{template_id}", response_model=schemas.TemplateOut)
    def get_template(template_id: str, identity: Identity = auth) -> dict[str, Any]:
        return service.template_dict(service.get_template(rt, identity, template_id))

    @r.get("/templates/{template_id}/export", summary="Export as ISO/IEC 19794-2:2005 (iso) or JSON descriptor",
           responses={200: {"content": {"application/octet-stream": {}, "application/json": {}}}})
    def export_template(template_id: str, format: str = Query("iso", pattern="^(iso|json)$"),
                        identity: Identity = auth) -> Response:
        row = service.get_template(rt, identity, template_id)
        return _template_response(service.template_of(row), format, template_id, row.subject)

    @r.post("/templates/import", status_code=201, response_model=schemas.TemplateOut, responses=BAD_INPUT,
            summary="Enroll an ISO/IEC 19794-2:2005 record or a JSON template")
    async def import_template(file: UploadFile = File(...), subject: str = Form(...),
                              finger: int | None = Form(None, description="default: the record's finger position"),
                              format: str | None = Form(None, description="iso or json; guessed when absent"),
                              identity: Identity = auth) -> dict[str, Any]:
        data = await read_upload(file, maxb)
        tpl = service.parse_template(data, format)
        f = tpl.finger if finger is None else finger
        tpl.finger = f
        # imported records carry their own quality scale (often 0 = not reported): only minutiae count gates them
        row = await run_in_threadpool(service.store_template, rt, identity.account_id, subject, f, tpl,
                                      "iso" if tpl.algorithm == "iso-19794-2" else "json", None, None, 0)
        return service.template_dict(row)

    @r.delete("/templates/{template_id}", status_code=204)
    def delete_template(template_id: str, identity: Identity = auth) -> Response:
        service.delete_template(rt, identity, template_id)
        return Response(status_code=204)

    # -- matching --------------------------------------------------------------------------------
    async def _probe(file: UploadFile | None, template: UploadFile | None, template_format: str | None,
                     enhancement: str | None, dpi: int) -> service.Probe:
        if (file is None) == (template is None):
            raise BadRequest("send either file (a print image) or template (ISO or JSON)", code="no_probe")
        if file is not None:
            data = await read_upload(file, maxb)
            return await run_in_threadpool(service.probe_from_image, rt, data, enhancement, dpi)
        data = await read_upload(template, maxb)
        return service.probe_from_template(data, template_format)

    @r.post("/verify", response_model=schemas.VerifyOut, responses=BAD_INPUT,
            summary="1:1: probe print or template against an enrolled template, or a subject (and finger)")
    async def verify(file: UploadFile | None = File(None), template: UploadFile | None = File(None),
                     template_format: str | None = Form(None), template_id: str | None = Form(None),
                     subject: str | None = Form(None), finger: int | None = Form(None),
                     fmr: float | None = Form(None, description="false-match rate of the decision, e.g. 0.001"),
                     enhancement: str | None = Form(None), dpi: int = Form(500, ge=100, le=2000),
                     identity: Identity = auth) -> dict[str, Any]:
        _fmr(fmr)
        probe = await _probe(file, template, template_format, enhancement, dpi)
        return await run_in_threadpool(lambda: service.verify(rt, identity, probe, template_id=template_id,
                                                              subject=subject, finger=finger, fmr=fmr))

    @r.post("/identify", response_model=schemas.IdentifyOut, responses=BAD_INPUT,
            summary="1:N: ranked candidates (subject, finger) scoring at or above the FMR threshold")
    async def identify(file: UploadFile | None = File(None), template: UploadFile | None = File(None),
                       template_format: str | None = Form(None), top_k: int = Form(5, ge=1, le=100),
                       fmr: float | None = Form(None), finger: int | None = Form(None),
                       enhancement: str | None = Form(None), dpi: int = Form(500, ge=100, le=2000),
                       identity: Identity = auth) -> dict[str, Any]:
        _fmr(fmr)
        probe = await _probe(file, template, template_format, enhancement, dpi)
        return await run_in_threadpool(lambda: service.identify(rt, identity, probe, top_k=top_k, fmr=fmr,
                                                                finger=finger))

    @r.get("/thresholds", summary="The score-to-FMR table measured on impostor comparisons")
    def thresholds() -> dict[str, Any]:
        return service.fmr_table(rt.settings.extractor)

    # -- distortion ------------------------------------------------------------------------------
    @r.post("/distortion", response_model=schemas.DistortionOut, responses=BAD_INPUT,
            summary="Distortion-type probabilities of a print (small CNN)")
    async def distortion(file: UploadFile = File(...), identity: Identity = auth) -> dict[str, Any]:
        data = await read_upload(file, maxb)
        return await run_in_threadpool(service.distortion_probabilities, rt, data)

    # -- admin -----------------------------------------------------------------------------------
    @r.post("/admin/cleanup", response_model=schemas.CleanupOut,
            summary="Admin: delete processed outputs older than the retention age (every account)")
    def cleanup(older_than_days: float | None = Query(None, ge=0), identity: Identity = auth) -> dict[str, Any]:
        require_admin(identity)
        return service.cleanup(rt, older_than_days)

    return [normalize_router(rt, what="grayscale, contrast stretched"), r]


def _template_response(tpl: Any, fmt: str, ident: str, subject: str | None = None) -> Response:
    if fmt == "iso":
        return Response(tpl.to_iso(), media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{ident}.iso"'})
    doc = tpl.to_json()
    if subject:
        doc["subject"] = subject
    return JSONResponse(doc)
