"""Batch processing (and optional enrollment) of many prints as one background job.

Every file is checked from its header at submission (format, pixel limit): a file that is not an image
or a bomb by its header refuses the whole request, naming the file and its index, before anything is
stored. The worker decodes and processes each file with a result or an error of its own; a job whose
files all failed is failed, a partial one says how many failed."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from bio_fingerprint.engine.normalize import normalize_print
from bio_fingerprint.exceptions import AllFilesFailed, InputMissing, NoFiles, TooManyFiles, with_file
from bio_fingerprint.models import FingerprintOutput
from bio_fingerprint.runtime import settings_of
from bio_fingerprint.schemas import FingerprintOutputOut, FingerprintTemplateOut
from bio_fingerprint.service.enrollment import enroll_image
from bio_fingerprint.service.processing import check_headers, process_bytes
from bio_shared.errors import BioError, Unprocessable
from bio_shared.identity import Identity
from bio_shared.jobs import JobContext
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import register_normalize_job

log = logging.getLogger(__name__)
PROCESS_KIND = "process"


def submit_batch(rt: ServiceRuntime, identity: Identity, files: list[tuple[bytes, str | None]],
                 options: dict[str, Any]) -> Any:
    if not files:
        raise NoFiles()
    limit = settings_of(rt).batch_max_files
    if len(files) > limit:
        raise TooManyFiles(f"at most {limit} files per job", details={"limit": limit})
    check_headers(rt, files)
    keys: list[str] = []
    try:
        for data, _ in files:
            keys.append(rt.blobs.put(rt.blobs.new_key(identity.account_id, "fingerprint-uploads", "bin"), data))
        inputs = [{"input_key": k, "filename": (n or f"file-{i}")[:255]} for i, (k, (_, n)) in
                  enumerate(zip(keys, files, strict=True))]
        return rt.jobs.submit(identity, PROCESS_KIND, {"inputs": inputs, "options": options})
    except Exception:
        for k in keys:
            rt.blobs.delete(k)
        raise


def _output_json(row: FingerprintOutput) -> dict[str, Any]:
    return FingerprintOutputOut.model_validate(row).model_dump(mode="json")


def _run_one(rt: ServiceRuntime, ctx: JobContext, name: str, key: str | None, opts: dict[str, Any],
             done: dict[str, FingerprintOutput]) -> dict[str, Any]:
    if name in done and (key is None or not rt.blobs.exists(key)):
        return {"status": "succeeded", "output": _output_json(done[name])}  # an earlier attempt did it
    if key is None:
        raise Unprocessable("the uploaded file is empty", code="empty_file")
    if not rt.blobs.exists(key):
        raise InputMissing()
    data = rt.blobs.get(key)
    steps, preset, dpi = opts.get("steps"), opts.get("enhancement"), int(opts.get("dpi", 500))
    if opts.get("subject"):
        e = enroll_image(rt, ctx.owner_id, data, name, opts["subject"], int(opts.get("finger", 0)), steps=steps,
                         preset=preset, dpi=dpi, job_id=ctx.id)
        return {"status": "succeeded", "output": _output_json(e.output),
                "template": FingerprintTemplateOut.model_validate(e.template).model_dump(mode="json")}
    row, _ = process_bytes(rt, ctx.owner_id, data, name, steps=steps, preset=preset, dpi=dpi, job_id=ctx.id)
    return {"status": "succeeded", "output": _output_json(row)}


def run_process_job(rt: ServiceRuntime, ctx: JobContext) -> dict[str, Any]:
    inputs = ctx.params["inputs"]
    opts = ctx.params.get("options") or {}
    with rt.sessions() as s:  # a retried job keeps what an earlier attempt finished
        done = {r.filename or "": r for r in s.scalars(select(FingerprintOutput).where(
            FingerprintOutput.job_id == ctx.id, FingerprintOutput.owner_id == ctx.owner_id))}
    items = []
    for i, item in enumerate(inputs):
        name, key = item["filename"], item["input_key"]
        entry: dict[str, Any] = {"index": i, "filename": name}
        try:
            entry.update(_run_one(rt, ctx, name, key, opts, done))
        except BioError as exc:
            entry.update(status="failed", error=with_file(exc, name, i).to_dict())
        except Exception as exc:
            log.exception("file %s of job %s failed", name, ctx.id)
            entry.update(status="failed", error={"code": "internal_error", "message": type(exc).__name__,
                                                 "details": {"file": name, "index": i}})
        if key:
            rt.blobs.delete(key)
        items.append(entry)
        ctx.progress((i + 1) / len(inputs))
    ok = sum(1 for e in items if e["status"] == "succeeded")
    summary = {"total": len(items), "succeeded": ok, "failed": len(items) - ok, "items": items}
    if items and ok == 0:
        raise AllFilesFailed(f"all {len(items)} files failed", details=summary)
    message = f"{len(items) - ok} of {len(items)} files failed" if ok < len(items) else "every file succeeded"
    return {**summary, "partial": ok < len(items), "message": message,
            "outputs_url": f"{rt.prefix}/outputs?job_id={ctx.id}"}


def register_jobs(rt: ServiceRuntime) -> None:
    register_normalize_job(rt, normalize_print, mode="gray")
    rt.jobs.handler(PROCESS_KIND)(lambda ctx: run_process_job(rt, ctx))
