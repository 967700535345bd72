"""webhooks: endpoints, deliveries, attempts, job-event cursors and the delivery job queue

Revision ID: gw0004
"""

import sqlalchemy as sa
from alembic import op

from bio_shared.migration_ops import create_jobs_table_v1

revision = "gw0004"
down_revision = "gw0003"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    create_jobs_table_v1("gateway_webhook_jobs")
    op.create_table(
        "gateway_webhook_endpoints",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(32), sa.ForeignKey("gateway_accounts.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("disabled_reason", sa.String(200), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_gateway_webhook_endpoints_account_id", "gateway_webhook_endpoints", ["account_id"])
    op.create_table(
        "gateway_webhook_deliveries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("endpoint_id", sa.String(32),
                  sa.ForeignKey("gateway_webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("delivered_at", _TS, nullable=True),
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_gateway_webhook_deliveries_event"),
    )
    op.create_index("ix_gateway_webhook_deliveries_endpoint_id", "gateway_webhook_deliveries", ["endpoint_id"])
    op.create_index("ix_gateway_webhook_deliveries_account_id", "gateway_webhook_deliveries", ["account_id"])
    op.create_table(
        "gateway_webhook_attempts",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(32),
                  sa.ForeignKey("gateway_webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_gateway_webhook_attempts_delivery_id", "gateway_webhook_attempts", ["delivery_id"])
    op.create_table(
        "gateway_webhook_cursors",
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("after_ts", _TS, nullable=False),
        sa.Column("after_id", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    for table in ("gateway_webhook_cursors", "gateway_webhook_attempts", "gateway_webhook_deliveries",
                  "gateway_webhook_endpoints", "gateway_webhook_jobs"):
        op.drop_table(table)
