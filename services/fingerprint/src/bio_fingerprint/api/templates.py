"""Enrolled templates of the caller: list, read, export (ISO/IEC 19794-2 or JSON), import, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from bio_fingerprint import exceptions as exc
from bio_fingerprint.api.deps import AUTH, IdentityDep, PageDep, RuntimeDep, SessionDep, error_responses, read_files
from bio_fingerprint.engine.template import Template
from bio_fingerprint.runtime import PREFIX
from bio_fingerprint.schemas import FingerprintTemplateList, FingerprintTemplateOut
from bio_fingerprint.service import templates
from bio_fingerprint.service.codec import template_of
from bio_shared.errors import InvalidName, PayloadTooLarge

router = APIRouter(prefix=f"{PREFIX}/templates", tags=["fingerprint: templates"], dependencies=AUTH,
                   responses=error_responses(exc.TemplateNotFound))
TemplateFormat = Annotated[str, Query(pattern="^(iso|json)$", description="iso or json")]
EXPORT_CONTENT: dict[int | str, dict[str, Any]] = {200: {"content": {"application/octet-stream": {}, "application/json": {}}}}


def template_response(tpl: Template, fmt: str, ident: str, subject: str | None = None) -> Response:
    if fmt == "iso":
        return Response(tpl.to_iso(), media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{ident}.iso"'})
    doc: dict[str, Any] = tpl.to_json()
    if subject:
        doc["subject"] = subject
    return JSONResponse(doc)


@router.get("", response_model=FingerprintTemplateList, operation_id="fingerprint_list_templates",
            summary="Enrolled templates of the caller")
def list_templates(session: SessionDep, identity: IdentityDep, page: PageDep,
                   subject: Annotated[str | None, Query(max_length=256)] = None,
                   finger: Annotated[int | None, Query(ge=0, le=10)] = None) -> FingerprintTemplateList:
    rows = templates.list_templates(session, identity, subject, finger, page.limit, page.offset)
    return FingerprintTemplateList.model_validate(rows)


@router.get("/{template_id}", response_model=FingerprintTemplateOut, operation_id="fingerprint_get_template")
def get_template(session: SessionDep, identity: IdentityDep, template_id: str) -> FingerprintTemplateOut:
    return FingerprintTemplateOut.model_validate(templates.get_template(session, identity, template_id))


@router.get("/{template_id}/export", summary="Export as ISO/IEC 19794-2:2005 (iso) or JSON descriptor",
            operation_id="fingerprint_export_template", responses=EXPORT_CONTENT)
def export_template(session: SessionDep, identity: IdentityDep, template_id: str,
                    format: TemplateFormat = "iso") -> Response:
    row = templates.get_template(session, identity, template_id)
    return template_response(template_of(row), format, template_id, row.subject)


@router.post("/import", status_code=201, response_model=FingerprintTemplateOut, operation_id="fingerprint_import_template",
             summary="Enroll an ISO/IEC 19794-2:2005 record or a JSON template",
             responses=error_responses(exc.InvalidTemplate, exc.InvalidTemplateFormat, exc.InvalidFinger,
                                       exc.TooFewMinutiae, PayloadTooLarge, InvalidName))
async def import_template(rt: RuntimeDep, identity: IdentityDep, file: Annotated[UploadFile, File()],
                          subject: Annotated[str, Form()],
                          finger: Annotated[int | None, Form(description="default: the record's finger position")] = None,
                          format: Annotated[str | None, Form(description="iso or json; guessed when absent")] = None,
                          ) -> FingerprintTemplateOut:
    (data, _), = await read_files(rt, [file])
    row = await run_in_threadpool(templates.import_template, rt, identity, data, subject, finger, format)
    return FingerprintTemplateOut.model_validate(row)


@router.delete("/{template_id}", status_code=204, operation_id="fingerprint_delete_template")
def delete_template(rt: RuntimeDep, identity: IdentityDep, template_id: str) -> Response:
    templates.delete_template(rt, identity, template_id)
    return Response(status_code=204)
