"""Tables owned by the contour mask service."""

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bio_shared.db import UTCDateTime, utcnow
from bio_shared.jobs import JobMixin, new_id
from bio_shared.sealed import SealedBytes


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "contour_mask_jobs"


class CacheEntry(Base):
    """One computed result, found again by a perceptual signature of the image and a hash of everything
    else that shaped it (landmarks, label map, options). Per account: one account never reuses another's."""

    __tablename__ = "contour_mask_cache"
    __table_args__ = (Index("ix_contour_mask_cache_lookup", "owner_id", "key_hash"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(String(64), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    phash: Mapped[str] = mapped_column(String(16))
    thumb: Mapped[bytes] = mapped_column(SealedBytes("contour_mask_cache.thumb"))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    result_id: Mapped[str] = mapped_column(String(32))
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
