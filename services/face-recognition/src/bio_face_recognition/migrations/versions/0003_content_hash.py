"""face embeddings: content hash of the enrolled picture

Revision ID: fr0003
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0003"
down_revision = "fr0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # made with alembic revision --autogenerate against bio_face_recognition.models; rows enrolled
    # before it have no hash (NULL) and are never taken for duplicates
    with op.batch_alter_table("face_embeddings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_sha256", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_face_embeddings_person_content", ["person_id", "content_sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("face_embeddings", schema=None) as batch_op:
        batch_op.drop_index("ix_face_embeddings_person_content")
        batch_op.drop_column("content_sha256")
