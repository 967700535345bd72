"""fingerprint templates and processed outputs

Revision ID: fp0002
"""

import sqlalchemy as sa
from alembic import op

revision = "fp0002"
down_revision = "fp0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fingerprint_templates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("finger", sa.Integer, nullable=False),
        sa.Column("impression", sa.Integer, nullable=False),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("algorithm_version", sa.String(32), nullable=False),
        sa.Column("quality", sa.Integer, nullable=False),
        sa.Column("minutiae_count", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("dpi", sa.Integer, nullable=False),
        sa.Column("minutiae", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("output_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fingerprint_templates_owner_id", "fingerprint_templates", ["owner_id"])
    op.create_index("ix_fingerprint_templates_subject", "fingerprint_templates", ["subject"])
    op.create_table(
        "fingerprint_outputs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("image_key", sa.String(255), nullable=False),
        sa.Column("template_id", sa.String(32), nullable=True),
        sa.Column("quality", sa.Integer, nullable=False),
        sa.Column("minutiae_count", sa.Integer, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("minutiae", sa.LargeBinary, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_fingerprint_outputs_owner_id", "fingerprint_outputs", ["owner_id"])
    op.create_index("ix_fingerprint_outputs_job_id", "fingerprint_outputs", ["job_id"])
    op.create_index("ix_fingerprint_outputs_created_at", "fingerprint_outputs", ["created_at"])


def downgrade() -> None:
    op.drop_table("fingerprint_outputs")
    op.drop_table("fingerprint_templates")
