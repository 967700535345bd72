import bio_gateway.audit.models  # noqa: F401  (registers the audit tables on Base)
from bio_gateway.models import Base
from bio_shared.db import run_migrations

run_migrations(Base.metadata, version_table="alembic_version_gateway")
