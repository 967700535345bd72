from bio_shared.db import run_migrations

from bio_face_recognition.models import Base

run_migrations(Base.metadata, version_table="alembic_version_face_recognition")
