from bio_gateway.models import Base
from bio_shared.db import run_migrations

run_migrations(Base.metadata, version_table="alembic_version_gateway")
