"""Bulk enrollment from a zip (a job) or a directory (the CLI), one folder per person, with a line per
file in the report: enrolled, skipped (metadata, picture already enrolled) or failed and why."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select

from bio_face_recognition.exceptions import AllFilesFailed, InputMissing, PersonNameTaken
from bio_face_recognition.models import FaceEmbedding, Person
from bio_face_recognition.runtime import face_state
from bio_face_recognition.service.archive import Entry, open_checked, zip_entries
from bio_face_recognition.service.common import Upload, get_event
from bio_face_recognition.service.enrollment import enroll
from bio_shared.errors import BioError, NotFound
from bio_shared.identity import Identity
from bio_shared.jobs import JobContext
from bio_shared.runtime import ServiceRuntime
from bio_shared.text import clean_name

log = logging.getLogger(__name__)
ENROLL_ZIP_KIND = "enroll_zip"
SKIPPED = ("skipped_metadata", "duplicate_image")


def _enroll_named(rt: ServiceRuntime, owner: str, event_id: str, name: str, upload: Upload, *, largest: bool,
                  source: str | None, created: set[str]) -> dict[str, Any]:
    name = clean_name(name, field="person folder")
    with rt.sessions() as s:
        person_id = s.scalar(select(Person.id).where(Person.event_id == event_id, Person.owner_id == owner,
                                                     Person.name == name))
    try:
        res = enroll(rt, owner, event_id, [upload], name=None if person_id else name, person_id=person_id,
                     largest=largest, source=source)
    except PersonNameTaken:  # created by a concurrent request meanwhile: add to it
        return _enroll_named(rt, owner, event_id, name, upload, largest=largest, source=source, created=created)
    if person_id is None:
        created.add(res.id)
    if res.skipped:
        skip = res.skipped[0]
        return {"status": "skipped", "person_id": res.id, "image_id": skip["image_id"], "code": skip["code"],
                "message": skip["message"]}
    return {"status": "enrolled", "person_id": res.id, "image_id": res.added[0].id, "warnings": res.warnings}


def _line(rt: ServiceRuntime, owner: str, event_id: str, entry: Entry, done: set[str], source_prefix: str,
          largest: bool, created: set[str]) -> dict[str, Any]:
    person_name, filename, read = entry
    line: dict[str, Any] = {"file": filename, "person": person_name}
    source = f"{source_prefix}{filename}"[:300] if source_prefix else None
    try:
        if source and source in done:
            return line | {"status": "enrolled", "note": "already enrolled by an earlier attempt"}
        data = read()  # metadata files and unreadable archive entries are reported here
        if not person_name:
            raise BioError("files must be in one folder per person", code="no_person_folder")
        line.update(_enroll_named(rt, owner, event_id, person_name, Upload(data, filename), largest=largest,
                                  source=source, created=created))
    except BioError as exc:
        line.update(status="skipped" if exc.code in SKIPPED else "failed", code=exc.code, message=exc.message)
    except Exception as exc:
        log.exception("bulk enrollment of %s failed", filename)
        line.update(status="failed", code="internal_error", message=type(exc).__name__)
    return line


def enroll_entries(rt: ServiceRuntime, owner: str, event_id: str, entries: Iterable[Entry], total: int, *,
                   largest: bool = False, source_prefix: str = "",
                   progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Enroll ``(person name, file name, read bytes)`` entries one by one. Files already enrolled under the
    same source (a re-run of an interrupted job) are reported as such and not enrolled twice."""
    created: set[str] = set()
    with rt.sessions() as s:
        get_event(s, owner, event_id)
        done = {src for src in s.scalars(select(FaceEmbedding.source).where(
            FaceEmbedding.event_id == event_id, FaceEmbedding.source.like(f"{source_prefix}%"))) if src
                } if source_prefix else set()
    report = []
    for i, entry in enumerate(entries):
        report.append(_line(rt, owner, event_id, entry, done, source_prefix, largest, created))
        if progress and (i % 5 == 4 or i + 1 == total):
            progress((i + 1) / max(1, total))
    return summarize(event_id, report, len(created))


def summarize(event_id: str, report: list[dict[str, Any]], people_created: int) -> dict[str, Any]:
    by_status = {s: sum(1 for r in report if r["status"] == s) for s in ("enrolled", "skipped", "failed")}
    failures: dict[str, int] = {}
    skipped: dict[str, int] = {}
    for r in report:
        if r["status"] == "failed":
            failures[r["code"]] = failures.get(r["code"], 0) + 1
        elif r["status"] == "skipped":
            skipped[r["code"]] = skipped.get(r["code"], 0) + 1
    return {"event_id": event_id, "files": len(report), **by_status, "failures_by_code": failures,
            "skipped_by_code": skipped, "people_created": people_created, "report": report}


def _drop(rt: ServiceRuntime, key: str) -> None:
    rt.blobs.delete(key)


def register_enroll_zip(rt: ServiceRuntime) -> None:
    @rt.jobs.handler(ENROLL_ZIP_KIND, on_abandon=lambda params: _drop(rt, params["zip_key"]))
    def enroll_zip(ctx: JobContext) -> dict[str, Any]:
        key, st = ctx.params["zip_key"], face_state(rt).settings
        if not rt.blobs.exists(key):
            raise InputMissing()
        try:
            with open_checked(rt.blobs.get(key), st.max_zip_entries) as zf:
                entries = zip_entries(zf, st.max_upload_bytes, st.max_zip_uncompressed_bytes)
                result = enroll_entries(rt, ctx.owner_id, ctx.params["event_id"], entries, len(entries),
                                        largest=bool(ctx.params.get("largest")), source_prefix=f"zip:{ctx.id}:",
                                        progress=ctx.progress)
        except (NotFound, BioError) as exc:
            if exc.status_code < 500:  # permanent: nothing to retry with
                rt.blobs.delete(key)
            raise
        result["filename"] = ctx.params.get("filename")
        rt.blobs.delete(key)
        if result["files"] and result["failed"] == result["files"]:
            # nothing usable at all: the job failed (its error carries the per-file report)
            raise AllFilesFailed(details={k: v for k, v in result.items() if k != "report"} |
                                 {"report": result["report"][:100]})
        return result


def submit_zip(rt: ServiceRuntime, identity: Identity, event_id: str, data: bytes, filename: str | None,
               largest: bool) -> Any:
    """Check the event and the archive's central directory, store the upload, submit the job: the files
    are read by the job, never in the request."""
    owner, st = identity.account_id, face_state(rt).settings
    with rt.sessions() as s:
        get_event(s, owner, event_id)
    open_checked(data, st.max_zip_entries).close()
    key = rt.blobs.put(rt.blobs.new_key(owner, "face-zips", "zip"), data)
    try:
        return rt.jobs.submit(identity, ENROLL_ZIP_KIND, {"event_id": event_id, "zip_key": key,
                                                          "filename": filename, "largest": largest})
    except Exception:
        rt.blobs.delete(key)
        raise
