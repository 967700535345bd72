"""Tables owned by the face recognition service.

Events (galleries) own people, people own embeddings (one per enrolled face image); unknown faces
belong to an event. Every row carries its owner; foreign keys cascade on delete and the service
deletes children explicitly as well (and their blobs), so nothing is orphaned on any backend.
``FaceEvent.version`` is bumped in the same transaction as every change to its people or embeddings:
each process compares it with the version of its cached embedding matrix.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bio_shared.db import UTCDateTime, utcnow
from bio_shared.jobs import JobMixin, new_id
from bio_shared.sealed import SealedBytes

EVENT_SETTINGS = ("threshold", "detector", "landmarks", "top_k", "keep_images", "min_face_px",
                  "unknown_retention_s", "refuse_duplicates")


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "face_recognition_jobs"


class FaceEvent(Base):
    __tablename__ = "face_events"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_face_events_owner_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    threshold: Mapped[float] = mapped_column(Float)
    detector: Mapped[str] = mapped_column(String(8))
    landmarks: Mapped[int] = mapped_column(Integer)
    top_k: Mapped[int] = mapped_column(Integer)
    keep_images: Mapped[bool] = mapped_column(Boolean)
    min_face_px: Mapped[int | None] = mapped_column(Integer, nullable=True)
    unknown_retention_s: Mapped[int] = mapped_column(Integer)
    refuse_duplicates: Mapped[bool] = mapped_column(Boolean)
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in EVENT_SETTINGS}


class Person(Base):
    __tablename__ = "face_people"
    __table_args__ = (UniqueConstraint("event_id", "name", name="uq_face_people_event_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(32), ForeignKey("face_events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FaceEmbedding(Base):
    """One enrolled face image of a person: its 128-d embedding (float32 bytes) and, when the event
    keeps images, the blob of the uploaded photo."""

    __tablename__ = "face_embeddings"
    # the last index covers what the approximate index reads of a whole event (its id set for a replica's
    # catch-up, its people count): index-only scans, not a table row per embedding (10 s at 1M in SQLite)
    __table_args__ = (Index("ix_face_embeddings_event_person", "event_id", "person_id"),
                      Index("ix_face_embeddings_person_content", "person_id", "content_sha256"),
                      Index("ix_face_embeddings_event_model_person_id", "event_id", "model", "model_version",
                            "person_id", "id"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(32), ForeignKey("face_events.id", ondelete="CASCADE"))
    person_id: Mapped[str] = mapped_column(String(32), ForeignKey("face_people.id", ondelete="CASCADE"), index=True)
    vector: Mapped[bytes] = mapped_column(SealedBytes("face_embeddings.vector"))
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    box: Mapped[list | None] = mapped_column(JSON, nullable=True)
    quality: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    image_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    source: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # sha256 of the decoded pixels (with their shape): the same picture is not enrolled twice for a person
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def image_kept(self) -> bool:
        return bool(self.image_key)


class UnknownFace(Base):
    """A probe face that matched nobody: kept until ``expires_at`` for a person to label."""

    __tablename__ = "face_unknowns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[str] = mapped_column(String(32), ForeignKey("face_events.id", ondelete="CASCADE"), index=True)
    vector: Mapped[bytes] = mapped_column(SealedBytes("face_unknowns.vector"))
    model: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    box: Mapped[list | None] = mapped_column(JSON, nullable=True)
    quality: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    best_distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    crop_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


OWNED_MODELS = [UnknownFace, FaceEmbedding, Person, FaceEvent]  # children before parents
