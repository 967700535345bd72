"""Tables owned by the face verify service."""

from sqlalchemy.orm import DeclarativeBase

from bio_shared.jobs import JobMixin


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "face_verify_jobs"
