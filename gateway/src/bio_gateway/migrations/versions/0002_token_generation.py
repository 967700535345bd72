"""accounts: token generation (disabling an account invalidates every access token issued before)

Revision ID: gw0002
"""

import sqlalchemy as sa
from alembic import op

revision = "gw0002"
down_revision = "gw0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_accounts") as batch:
        batch.add_column(sa.Column("token_generation", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("gateway_accounts") as batch:
        batch.drop_column("token_generation")
