# imported for their tables on Base (autogenerate and create_all see them)
import bio_gateway.audit.models
import bio_gateway.webhooks.models  # noqa: F401
from bio_gateway.models import Base
from bio_shared.db import run_migrations

run_migrations(Base.metadata, version_table="alembic_version_gateway")
