"""Schema operations used by several packages' migrations.

Frozen by version: a later change to the jobs table gets a new function, never an edit here, so old
migrations keep producing the schema they produced when they were written.
"""

import sqlalchemy as sa
from alembic import op


def create_jobs_table_v1(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.JSON, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("worker", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(f"ix_{name}_owner_id", name, ["owner_id"])
    op.create_index(f"ix_{name}_status", name, ["status"])
    op.create_index(f"ix_{name}_lease_expires_at", name, ["lease_expires_at"])


def drop_jobs_table_v1(name: str) -> None:
    op.drop_table(name)
