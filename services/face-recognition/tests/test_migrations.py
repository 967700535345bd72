"""The service's own migrations on existing data: the content-hash column (fr0003) and the descriptor's
rows moved to the platform's one model id (fr0004), both ways."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from bio_shared.db import downgrade, get_engine, migrate

OLD = "dlib_face_recognition_resnet_model_v1"


def _rows(url: str) -> list[tuple[str, str]]:
    with get_engine(url).connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT model, model_version FROM face_embeddings ORDER BY id"))]


def test_old_rows_get_the_one_model_id_and_back(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate("bio_face_recognition", url, "fr0002")
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO face_events VALUES ('e1', 'o', 'ev', 0.6, 'hog', 5, 5, 0, NULL, 0, 0, 1, "
                          "'2026-01-01', '2026-01-01')"))
        conn.execute(text("INSERT INTO face_people VALUES ('p1', 'o', 'e1', 'x', '2026-01-01', '2026-01-01')"))
        for i, (model, version) in enumerate([(OLD, "1.0.0+0123456789ab"), ("facenet", "2")]):
            conn.execute(text("INSERT INTO face_embeddings (id, owner_id, event_id, person_id, vector, model, "
                              "model_version, created_at) VALUES (:id, 'o', 'e1', 'p1', x'00', :m, :v, '2026-01-01')"),
                         {"id": f"i{i}", "m": model, "v": version})
    migrate("bio_face_recognition", url)
    assert _rows(url) == [("dlib_resnet_v1", "1"), ("facenet", "2")]  # other models are left alone
    columns = {c["name"] for c in inspect(get_engine(url)).get_columns("face_embeddings")}
    assert "content_sha256" in columns
    downgrade("bio_face_recognition", url, "fr0002")
    (old, other) = _rows(url)
    assert old[0] == OLD and "+" in old[1] and len(old[1].split("+")[1]) == 12 and other == ("facenet", "2")
    assert "content_sha256" not in {c["name"] for c in inspect(get_engine(url)).get_columns("face_embeddings")}
