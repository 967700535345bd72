"""Enrollment from images: process, check the quality minimum, then store the output and the template
together (a refused print leaves no output row and no image)."""

from __future__ import annotations

from dataclasses import dataclass

from bio_fingerprint.engine.pipeline import Quality
from bio_fingerprint.exceptions import NoFiles, NothingEnrolled, TooManyFiles, with_file
from bio_fingerprint.models import FingerprintOutput, FingerprintTemplate
from bio_fingerprint.runtime import PREFIX, settings_of
from bio_fingerprint.service.processing import new_output, process_print, put_enhanced
from bio_fingerprint.service.templates import check_enrollable, new_template_row
from bio_fingerprint.service.validation import check_finger, check_subject
from bio_shared.db import session_scope
from bio_shared.errors import BioError
from bio_shared.identity import Identity
from bio_shared.runtime import ServiceRuntime


@dataclass
class Enrolled:
    template: FingerprintTemplate
    output: FingerprintOutput
    quality: Quality

    @property
    def output_id(self) -> str:
        return self.output.id


@dataclass
class EnrollItem:
    index: int
    filename: str | None
    status: str
    template: FingerprintTemplate | None = None
    output_id: str | None = None
    quality: Quality | None = None
    error: dict | None = None


@dataclass
class EnrollResult:
    subject: str
    finger: int
    enrolled: int
    failed: int
    items: list[EnrollItem]


def enroll_image(rt: ServiceRuntime, owner_id: str, data: bytes, filename: str | None, subject: str, finger: int,
                 *, steps: list[dict] | None = None, preset: str | None = None, dpi: int = 500,
                 job_id: str | None = None) -> Enrolled:
    subject = check_subject(subject)
    check_finger(finger)
    result = process_print(rt, data, steps=steps, preset=preset, dpi=dpi)
    tpl = result.template(finger, 0)
    check_enrollable(tpl, settings_of(rt).enroll_min_quality, {"quality": result.quality.to_dict()})
    key = put_enhanced(rt, owner_id, result)
    try:
        with session_scope(rt.sessions) as s:
            out = new_output(rt, owner_id, result, filename, key, steps=steps, preset=preset, job_id=job_id)
            s.add(out)
            row = new_template_row(s, owner_id, subject, finger, tpl, "image", out.id)
            out.template_id = row.id
    except Exception:
        rt.blobs.delete(key)
        raise
    return Enrolled(row, out, result.quality)


def process_and_enroll(rt: ServiceRuntime, identity: Identity, files: list[tuple[bytes, str | None]], subject: str,
                       finger: int, steps: list[dict] | None, preset: str | None, dpi: int) -> EnrollResult:
    """Synchronous enrollment of a few impressions of one finger: per-file outcome; 422 if none enrolled."""
    if not files:
        raise NoFiles()
    limit = settings_of(rt).sync_max_files
    if len(files) > limit:
        raise TooManyFiles(f"at most {limit} files per synchronous call; use POST {PREFIX}/jobs/process",
                           details={"limit": limit})
    subject = check_subject(subject)
    check_finger(finger)
    items = []
    for i, (data, name) in enumerate(files):
        try:
            e = enroll_image(rt, identity.account_id, data, name, subject, finger, steps=steps, preset=preset, dpi=dpi)
            items.append(EnrollItem(i, name, "enrolled", e.template, e.output_id, e.quality))
        except BioError as exc:
            with_file(exc, name, i)
            if len(files) == 1:
                raise
            items.append(EnrollItem(i, name, "failed", error=exc.to_dict()))
    enrolled = sum(1 for i in items if i.status == "enrolled")
    if enrolled == 0:
        raise NothingEnrolled(details={"items": [{"index": i.index, "file": i.filename, "error": i.error}
                                                 for i in items]})
    return EnrollResult(subject, finger, enrolled, len(items) - enrolled, items)
