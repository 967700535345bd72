"""contour mask jobs table

Revision ID: cm0001
"""

from bio_shared.migration_ops import create_jobs_table_v1, drop_jobs_table_v1

revision = "cm0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_jobs_table_v1("contour_mask_jobs")


def downgrade() -> None:
    drop_jobs_table_v1("contour_mask_jobs")
