"""Tables owned by the contour mask service."""

from sqlalchemy.orm import DeclarativeBase

from bio_shared.jobs import JobMixin


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "contour_mask_jobs"
