from bio_shared.db import run_migrations

from bio_face_verify.models import Base

run_migrations(Base.metadata, version_table="alembic_version_face_verify")
