"""Tables owned by the face recognition service."""

from sqlalchemy.orm import DeclarativeBase

from bio_shared.jobs import JobMixin


class Base(DeclarativeBase):
    pass


class Job(JobMixin, Base):
    __tablename__ = "face_recognition_jobs"
