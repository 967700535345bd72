"""face recognition events, people, embeddings, unknown faces

Revision ID: fr0002
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0002"
down_revision = "fr0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "face_events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("detector", sa.String(8), nullable=False),
        sa.Column("landmarks", sa.Integer, nullable=False),
        sa.Column("top_k", sa.Integer, nullable=False),
        sa.Column("keep_images", sa.Boolean, nullable=False),
        sa.Column("min_face_px", sa.Integer, nullable=True),
        sa.Column("unknown_retention_s", sa.Integer, nullable=False),
        sa.Column("refuse_duplicates", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("owner_id", "name", name="uq_face_events_owner_name"),
    )
    op.create_index("ix_face_events_owner_id", "face_events", ["owner_id"])
    op.create_table(
        "face_people",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(32), sa.ForeignKey("face_events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("event_id", "name", name="uq_face_people_event_name"),
    )
    op.create_index("ix_face_people_owner_id", "face_people", ["owner_id"])
    op.create_index("ix_face_people_event_id", "face_people", ["event_id"])
    op.create_table(
        "face_embeddings",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(32), sa.ForeignKey("face_events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person_id", sa.String(32), sa.ForeignKey("face_people.id", ondelete="CASCADE"), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("box", sa.JSON, nullable=True),
        sa.Column("quality", sa.JSON, nullable=True),
        sa.Column("image_key", sa.String(300), nullable=True),
        sa.Column("source", sa.String(300), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_face_embeddings_owner_id", "face_embeddings", ["owner_id"])
    op.create_index("ix_face_embeddings_person_id", "face_embeddings", ["person_id"])
    op.create_index("ix_face_embeddings_event_person", "face_embeddings", ["event_id", "person_id"])
    op.create_table(
        "face_unknowns",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(32), sa.ForeignKey("face_events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("box", sa.JSON, nullable=True),
        sa.Column("quality", sa.JSON, nullable=True),
        sa.Column("best_distance", sa.Float, nullable=True),
        sa.Column("crop_key", sa.String(300), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_face_unknowns_owner_id", "face_unknowns", ["owner_id"])
    op.create_index("ix_face_unknowns_event_id", "face_unknowns", ["event_id"])
    op.create_index("ix_face_unknowns_expires_at", "face_unknowns", ["expires_at"])


def downgrade() -> None:
    op.drop_table("face_unknowns")
    op.drop_table("face_embeddings")
    op.drop_table("face_people")
    op.drop_table("face_events")
