"""face recognition jobs table

Revision ID: fr0001
"""

from bio_shared.migration_ops import create_jobs_table_v1, drop_jobs_table_v1

revision = "fr0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_jobs_table_v1("face_recognition_jobs")


def downgrade() -> None:
    drop_jobs_table_v1("face_recognition_jobs")
