"""face embeddings: a covering index of an event's ids and people per model (the approximate index's
catch-up and people count)

Revision ID: fr0005
"""

from alembic import op

revision = "fr0005"
down_revision = "fr0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("face_embeddings", schema=None) as batch_op:
        batch_op.create_index("ix_face_embeddings_event_model_person_id",
                              ["event_id", "model", "model_version", "person_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("face_embeddings", schema=None) as batch_op:
        batch_op.drop_index("ix_face_embeddings_event_model_person_id")
