"""Processed outputs (enhanced image + template of one print): read, list, delete, age-based clean-up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bio_fingerprint.exceptions import OutputNotFound
from bio_fingerprint.models import FingerprintOutput
from bio_fingerprint.runtime import settings_of
from bio_shared.db import session_scope, utcnow
from bio_shared.identity import Identity
from bio_shared.runtime import ServiceRuntime


@dataclass(frozen=True)
class OutputPage:
    items: list[FingerprintOutput]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Cleanup:
    removed_outputs: int
    removed_images: int
    older_than_days: float
    cutoff: datetime


def get_output(s: Session, identity: Identity, output_id: str) -> FingerprintOutput:
    row = s.get(FingerprintOutput, output_id) if len(output_id) <= 32 else None
    if row is None or row.owner_id != identity.account_id:
        raise OutputNotFound()
    return row


def list_outputs(s: Session, identity: Identity, limit: int, offset: int, job_id: str | None = None) -> OutputPage:
    where = [FingerprintOutput.owner_id == identity.account_id]
    if job_id:
        where.append(FingerprintOutput.job_id == job_id)
    total = int(s.scalar(select(func.count()).select_from(FingerprintOutput).where(*where)) or 0)
    rows = list(s.scalars(select(FingerprintOutput).where(*where)
                          .order_by(FingerprintOutput.created_at.desc(), FingerprintOutput.id)
                          .limit(limit).offset(offset)))
    return OutputPage(rows, total, limit, offset)


def output_image(rt: ServiceRuntime, identity: Identity, output_id: str) -> bytes:
    with rt.sessions() as s:
        row = get_output(s, identity, output_id)
    return rt.blobs.get(row.image_key)


def delete_output(rt: ServiceRuntime, identity: Identity, output_id: str) -> None:
    with session_scope(rt.sessions) as s:
        row = get_output(s, identity, output_id)
        key = row.image_key
        s.execute(delete(FingerprintOutput).where(FingerprintOutput.id == row.id))
    rt.blobs.delete(key)


def cleanup(rt: ServiceRuntime, older_than_days: float | None = None) -> Cleanup:
    """Delete processed outputs (rows and images) older than the retention age, for every account.
    Enrolled templates are kept: they are the database, not outputs."""
    days = settings_of(rt).output_retention_days if older_than_days is None else older_than_days
    cutoff = utcnow() - timedelta(days=days)
    removed = blobs = 0
    while True:
        with session_scope(rt.sessions) as s:
            rows = list(s.execute(select(FingerprintOutput.id, FingerprintOutput.image_key)
                                  .where(FingerprintOutput.created_at < cutoff).limit(500)))
            if not rows:
                break
            s.execute(delete(FingerprintOutput).where(FingerprintOutput.id.in_([r[0] for r in rows])))
        for _, key in rows:
            blobs += int(rt.blobs.delete(key))
        removed += len(rows)
    return Cleanup(removed, blobs, days, cutoff)
