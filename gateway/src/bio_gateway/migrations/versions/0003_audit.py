"""audit trail: chained entries and chain heads

Revision ID: gw0003
"""

import sqlalchemy as sa
from alembic import op

revision = "gw0003"
down_revision = "gw0002"
branch_labels = None
depends_on = None

_BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gateway_audit_entries",
        sa.Column("id", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("chain", sa.String(32), nullable=False),
        sa.Column("seq", _BIGINT, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("credential", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("chain", "seq", name="uq_gateway_audit_entries_chain_seq"),
    )
    op.create_index("ix_gateway_audit_entries_chain", "gateway_audit_entries", ["chain"])
    op.create_index("ix_gateway_audit_entries_at", "gateway_audit_entries", ["at"])
    op.create_index("ix_gateway_audit_entries_account_id", "gateway_audit_entries", ["account_id"])
    op.create_index("ix_gateway_audit_entries_action", "gateway_audit_entries", ["action"])
    op.create_table(
        "gateway_audit_heads",
        sa.Column("chain", sa.String(32), primary_key=True),
        sa.Column("seq", _BIGINT, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("anchor_seq", _BIGINT, nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gateway_audit_heads")
    op.drop_table("gateway_audit_entries")
