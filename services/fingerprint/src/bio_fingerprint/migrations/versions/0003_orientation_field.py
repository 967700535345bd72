"""orientation fields of templates and processed outputs (NULL: a record without one)

Revision ID: fp0003
"""

import sqlalchemy as sa
from alembic import op

revision = "fp0003"
down_revision = "fp0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("fingerprint_templates", sa.Column("orientation_field", sa.LargeBinary, nullable=True))
    op.add_column("fingerprint_outputs", sa.Column("orientation_field", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fingerprint_outputs") as batch:
        batch.drop_column("orientation_field")
    with op.batch_alter_table("fingerprint_templates") as batch:
        batch.drop_column("orientation_field")
