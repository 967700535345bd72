"""Enrolled templates: parse and validate imported records (ISO/IEC 19794-2 or JSON), store, list, delete."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bio_fingerprint.engine.template import Template, TemplateFormatError
from bio_fingerprint.exceptions import (
    InvalidTemplate,
    InvalidTemplateFormat,
    QualityTooLow,
    TemplateNotFound,
    TooFewMinutiae,
)
from bio_fingerprint.models import FingerprintOutput, FingerprintTemplate
from bio_fingerprint.runtime import settings_of
from bio_fingerprint.service.codec import pack, pack_field
from bio_fingerprint.service.validation import check_finger, check_subject
from bio_shared.db import session_scope, utcnow
from bio_shared.errors import InvalidJson
from bio_shared.identity import Identity
from bio_shared.jobs import new_id
from bio_shared.jsonsafe import loads_limited
from bio_shared.runtime import ServiceRuntime

MIN_MINUTIAE = 5
# What a stored template may carry (the columns are 32-bit integers and short strings).
LIMITS = {"width": (1, 0xFFFF), "height": (1, 0xFFFF), "dpi": (100, 2000), "quality": (0, 100),
          "finger": (0, 10), "impression": (0, 255)}
TEXT_LIMITS = {"algorithm": 64, "version": 32}


@dataclass(frozen=True)
class TemplatePage:
    items: list[FingerprintTemplate]
    total: int
    limit: int
    offset: int


def _iso_resolution(data: bytes) -> tuple[int, int]:
    return struct.unpack(">HH", data[18:22]) if len(data) >= 22 else (0, 0)


def validate_template(tpl: Template) -> Template:
    """Refuse what would be stored wrong: zero or huge sizes, resolutions, qualities out of range, long names."""
    values = {"width": tpl.width, "height": tpl.height, "dpi": tpl.dpi, "quality": tpl.quality,
              "finger": tpl.finger, "impression": tpl.impression}
    for name, value in values.items():
        lo, hi = LIMITS[name]
        if not isinstance(value, int) or not lo <= value <= hi:
            shown = value if isinstance(value, int) and abs(value) < 10**12 else "out of range"
            raise InvalidTemplate(f"template {name} must be {lo}-{hi}", details={"field": name, "value": shown})
    for name, limit in TEXT_LIMITS.items():
        if len(getattr(tpl, name)) > limit:
            raise InvalidTemplate(f"template {name} is longer than {limit} characters", details={"field": name})
    return tpl


def parse_template(data: bytes, fmt: str | None) -> Template:
    fmt = (fmt or "").lower()
    if fmt not in ("", "iso", "json"):
        raise InvalidTemplateFormat()
    try:
        if fmt == "iso" or (not fmt and data[:4] == b"FMR\x00"):
            if data[:4] == b"FMR\x00" and 0 in _iso_resolution(data):
                raise InvalidTemplate("ISO record has a resolution of 0", details={"field": "resolution"})
            return validate_template(Template.from_iso(data))
        try:
            doc = loads_limited(data, field="template", max_bytes=len(data) + 1, max_depth=4)
        except InvalidJson as exc:
            raise InvalidTemplate(f"neither an ISO/IEC 19794-2 record nor a JSON template ({exc.message})") from exc
        if not isinstance(doc, dict):
            raise InvalidTemplate("JSON template must be an object")
        return validate_template(Template.from_json(doc))
    except TemplateFormatError as exc:
        raise InvalidTemplate(str(exc)) from exc
    except OverflowError as exc:
        raise InvalidTemplate("a number of the template is out of range") from exc


def check_enrollable(tpl: Template, min_quality: int, extra: dict[str, Any] | None = None) -> None:
    details = {"quality": tpl.quality, "minimum": min_quality, **(extra or {})}
    if tpl.quality < min_quality:
        raise QualityTooLow(f"print quality {tpl.quality} is under the enrollment minimum {min_quality}",
                            details=details)
    if len(tpl.minutiae) < MIN_MINUTIAE:
        raise TooFewMinutiae(f"template has {len(tpl.minutiae)} minutiae; at least {MIN_MINUTIAE} are needed",
                             details=details)


def next_impression(s: Session, owner_id: str, subject: str, finger: int) -> int:
    q = select(func.max(FingerprintTemplate.impression)).where(
        FingerprintTemplate.owner_id == owner_id, FingerprintTemplate.subject == subject,
        FingerprintTemplate.finger == finger)
    return int(s.scalar(q) or 0) + 1


def new_template_row(s: Session, owner_id: str, subject: str, finger: int, tpl: Template, source: str,
                     output_id: str | None = None) -> FingerprintTemplate:
    row = FingerprintTemplate(id=new_id(), owner_id=owner_id, subject=subject, finger=finger,
                              impression=next_impression(s, owner_id, subject, finger), algorithm=tpl.algorithm,
                              algorithm_version=tpl.version, quality=int(tpl.quality), minutiae_count=len(tpl.minutiae),
                              width=tpl.width, height=tpl.height, dpi=tpl.dpi, minutiae=pack(tpl.minutiae),
                              orientation_field=pack_field(tpl.orientation), source=source, output_id=output_id, created_at=utcnow())
    s.add(row)
    return row


def import_template(rt: ServiceRuntime, identity: Identity, data: bytes, subject: str, finger: int | None,
                    fmt: str | None) -> FingerprintTemplate:
    """Enroll an ISO or JSON record. Imported records carry their own quality scale (often 0 = not
    reported): only the minutiae count gates them."""
    subject = check_subject(subject)
    tpl = parse_template(data, fmt)
    tpl.finger = check_finger(tpl.finger if finger is None else finger)
    check_enrollable(tpl, 0)
    with session_scope(rt.sessions) as s:
        return new_template_row(s, identity.account_id, subject, tpl.finger, tpl,
                                "iso" if tpl.algorithm == "iso-19794-2" else "json")


def get_template(s: Session, identity: Identity, template_id: str) -> FingerprintTemplate:
    row = s.get(FingerprintTemplate, template_id) if len(template_id) <= 32 else None
    if row is None or row.owner_id != identity.account_id:
        raise TemplateNotFound()
    return row


def list_templates(s: Session, identity: Identity, subject: str | None, finger: int | None, limit: int,
                   offset: int) -> TemplatePage:
    where = [FingerprintTemplate.owner_id == identity.account_id]
    if subject:
        where.append(FingerprintTemplate.subject == subject)
    if finger is not None:
        where.append(FingerprintTemplate.finger == finger)
    total = int(s.scalar(select(func.count()).select_from(FingerprintTemplate).where(*where)) or 0)
    rows = list(s.scalars(select(FingerprintTemplate).where(*where)
                          .order_by(FingerprintTemplate.subject, FingerprintTemplate.finger,
                                    FingerprintTemplate.impression, FingerprintTemplate.id)
                          .limit(limit).offset(offset)))
    return TemplatePage(rows, total, limit, offset)


def delete_template(rt: ServiceRuntime, identity: Identity, template_id: str) -> None:
    with session_scope(rt.sessions) as s:
        row = get_template(s, identity, template_id)
        s.execute(delete(FingerprintTemplate).where(FingerprintTemplate.id == row.id))
        out = s.get(FingerprintOutput, row.output_id) if row.output_id else None
        if out is not None and out.template_id == row.id:
            out.template_id = None


def enroll_minimum(rt: ServiceRuntime) -> int:
    return settings_of(rt).enroll_min_quality
