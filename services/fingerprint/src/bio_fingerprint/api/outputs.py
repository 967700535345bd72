"""Processed outputs of the caller: list, read (image, template), delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from bio_fingerprint import exceptions as exc
from bio_fingerprint.api.deps import AUTH, IdentityDep, PageDep, RuntimeDep, SessionDep, error_responses
from bio_fingerprint.api.templates import TemplateFormat, template_response
from bio_fingerprint.runtime import PREFIX
from bio_fingerprint.schemas import FingerprintOutputList, FingerprintOutputOut
from bio_fingerprint.service import outputs
from bio_fingerprint.service.codec import output_template

router = APIRouter(prefix=f"{PREFIX}/outputs", tags=["fingerprint: outputs"], dependencies=AUTH,
                   responses=error_responses(exc.OutputNotFound))


@router.get("", response_model=FingerprintOutputList, operation_id="fingerprint_list_outputs",
            summary="Processed outputs of the caller, newest first")
def list_outputs(session: SessionDep, identity: IdentityDep, page: PageDep,
                 job_id: Annotated[str | None, Query(max_length=64)] = None) -> FingerprintOutputList:
    return FingerprintOutputList.model_validate(outputs.list_outputs(session, identity, page.limit, page.offset, job_id))


@router.get("/{output_id}", response_model=FingerprintOutputOut, operation_id="fingerprint_get_output")
def get_output(session: SessionDep, identity: IdentityDep, output_id: str) -> FingerprintOutputOut:
    return FingerprintOutputOut.model_validate(outputs.get_output(session, identity, output_id))


@router.get("/{output_id}/image", response_class=Response, operation_id="fingerprint_get_output_image",
            responses={200: {"content": {"image/png": {}}}}, summary="The enhanced image (PNG, ridges dark)")
def output_image(rt: RuntimeDep, identity: IdentityDep, output_id: str) -> Response:
    return Response(outputs.output_image(rt, identity, output_id), media_type="image/png")


@router.get("/{output_id}/template", summary="The output's minutiae template (iso or json)",
            operation_id="fingerprint_get_output_template",
            responses={200: {"content": {"application/octet-stream": {}, "application/json": {}}}})
def get_output_template(session: SessionDep, identity: IdentityDep, output_id: str,
                        format: TemplateFormat = "json") -> Response:
    return template_response(output_template(outputs.get_output(session, identity, output_id)), format, output_id)


@router.delete("/{output_id}", status_code=204, operation_id="fingerprint_delete_output")
def delete_output(rt: RuntimeDep, identity: IdentityDep, output_id: str) -> Response:
    outputs.delete_output(rt, identity, output_id)
    return Response(status_code=204)
