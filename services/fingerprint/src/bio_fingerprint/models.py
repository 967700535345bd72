"""Tables owned by the fingerprint service. Every row a caller creates carries its owner_id."""

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bio_shared.db import UTCDateTime, utcnow
from bio_shared.jobs import JobMixin, new_id
from bio_shared.sealed import SealedBytes


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "fingerprint_jobs"


class FingerprintTemplate(Base):
    """One enrolled impression: a minutiae template of one finger of one subject."""

    __tablename__ = "fingerprint_templates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(128), index=True)
    finger: Mapped[int] = mapped_column(Integer)  # ISO/IEC 19794-2 finger position 0-10
    impression: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per subject and finger
    algorithm: Mapped[str] = mapped_column(String(64))
    algorithm_version: Mapped[str] = mapped_column(String(32))
    quality: Mapped[int] = mapped_column(Integer)
    minutiae_count: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    dpi: Mapped[int] = mapped_column(Integer)
    minutiae: Mapped[bytes] = mapped_column(SealedBytes("fingerprint_templates.minutiae"))  # float32 (n, 5): x, y, theta, type, quality
    # encoded orientation field (engine/orientation_field.py); NULL for a record imported without one
    orientation_field: Mapped[bytes | None] = mapped_column(SealedBytes("fingerprint_templates.orientation_field"),
                                                           nullable=True)
    source: Mapped[str] = mapped_column(String(16))  # image, iso, json
    output_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FingerprintOutput(Base):
    """A processed print: enhanced image (blob), its template and quality; deleted after a retention age."""

    __tablename__ = "fingerprint_outputs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    image_key: Mapped[str] = mapped_column(String(255))  # blob key, never exposed
    template_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    quality: Mapped[int] = mapped_column(Integer)
    minutiae_count: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    minutiae: Mapped[bytes] = mapped_column(SealedBytes("fingerprint_outputs.minutiae"))
    orientation_field: Mapped[bytes | None] = mapped_column(SealedBytes("fingerprint_outputs.orientation_field"),
                                                           nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
