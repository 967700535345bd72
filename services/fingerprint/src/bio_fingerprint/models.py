"""Tables owned by the fingerprint service."""

from sqlalchemy.orm import DeclarativeBase

from bio_shared.jobs import JobMixin


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "fingerprint_jobs"
