"""contour mask result cache

Revision ID: cm0002
"""

import sqlalchemy as sa
from alembic import op

revision = "cm0002"
down_revision = "cm0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contour_mask_cache",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("phash", sa.String(16), nullable=False),
        sa.Column("thumb", sa.LargeBinary, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("result_id", sa.String(32), nullable=False),
        sa.Column("hits", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contour_mask_cache_owner_id", "contour_mask_cache", ["owner_id"])
    op.create_index("ix_contour_mask_cache_lookup", "contour_mask_cache", ["owner_id", "key_hash"])


def downgrade() -> None:
    op.drop_table("contour_mask_cache")
