"""CLI: bulk enrollment from a directory, re-embedding for a new model version, unknown purge, evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from bio_face_recognition.cli import main
from bio_face_recognition.evaluation import Dataset, Sample, eer, rank1, verification
from bio_face_recognition.models import FaceEmbedding, FaceEvent
from bio_face_recognition.runtime import face_state
from bio_shared.db import session_scope
from bio_testing.shared import sample_jpeg


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("BIO_FACE_RECOGNITION_DATABASE_URL", url)
    monkeypatch.setenv("BIO_FACE_RECOGNITION_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BIO_FACE_RECOGNITION_ENV", "test")
    main(["migrate"])
    return url


def _runtime():
    from bio_face_recognition.app import build

    return build()


def test_enroll_dir_reports_every_file_and_reembed_recomputes_old_model_embeddings(cli_env, tmp_path, data_dir,
                                                                                    capsys):
    f = data_dir / "faces"
    people = tmp_path / "people"
    (people / "obama").mkdir(parents=True)
    (people / "hopkins").mkdir()
    shutil.copy(f / "face_recognition/examples/obama_small.jpg", people / "obama" / "1.jpg")
    shutil.copy(f / "davidsandberg-facenet/Anthony_Hopkins_0001.jpg", people / "hopkins" / "1.jpg")
    (people / "hopkins" / "noise.jpg").write_bytes(sample_jpeg(300, 300))
    (people / "hopkins" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    (people / "stray.jpg").write_bytes(b"at the top level")
    report = tmp_path / "report.json"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["enroll-dir", str(people), "--owner", "acct-cli", "--event", "lobby", "--create", "--report",
              str(report)])
    assert exit_.value.code == 3  # some files failed
    summary = json.loads(capsys.readouterr().out)
    assert (summary["files"], summary["enrolled"], summary["failed"]) == (5, 2, 3)
    lines = {r["file"]: r for r in json.loads(report.read_text())["report"]}
    assert lines["hopkins/noise.jpg"]["code"] == "no_face"
    assert lines["hopkins/broken.jpg"]["code"] == "corrupt_image"
    assert lines["stray.jpg"]["code"] == "no_person_folder"

    rt = _runtime()
    state = face_state(rt)
    with session_scope(rt.sessions) as s:
        event = s.scalar(select(FaceEvent).where(FaceEvent.name == "lobby"))
        assert event.owner_id == "acct-cli"
        s.execute(update(FaceEmbedding).values(model_version="old-version"))
        s.execute(update(FaceEvent).values(keep_images=True))
        before = {e.id: e.vector for e in s.scalars(select(FaceEmbedding))}
    # embeddings of another model version are not searched
    with rt.sessions() as s:
        assert len(state.galleries.get(s, event, state.model)) == 0
    main(["reembed", "--dry-run"])
    assert json.loads(capsys.readouterr().out) | {"failures": []} == {
        "stale": 2, "recomputed": 0, "no_image": 2, "failed": 0, "model": state.model[0], "model_version": state.model[1],
        "failures": []}

    # the same folder again: the pictures the people already have are skipped, not enrolled twice
    with pytest.raises(SystemExit):
        main(["enroll-dir", str(people), "--owner", "acct-cli", "--event", "lobby"])
    again = json.loads(capsys.readouterr().out)
    assert (again["enrolled"], again["skipped"], again["skipped_by_code"]) == (0, 2, {"duplicate_image": 2})

    # a person enrolled into an event that keeps its images can be re-embedded (rows enrolled before
    # the content hash existed have none: they are not taken for duplicates)
    with session_scope(rt.sessions) as s:
        s.execute(update(FaceEmbedding).values(content_sha256=None))
    with pytest.raises(SystemExit):
        main(["enroll-dir", str(people), "--owner", "acct-cli", "--event", "lobby"])
    capsys.readouterr()
    with session_scope(rt.sessions) as s:
        s.execute(update(FaceEmbedding).values(model_version="old-version"))
    main(["reembed"])
    out = json.loads(capsys.readouterr().out)
    assert (out["stale"], out["recomputed"], out["no_image"]) == (4, 2, 2)
    with rt.sessions() as s:
        rows = list(s.scalars(select(FaceEmbedding)))
    fresh = [r for r in rows if r.model_version == state.model[1]]
    assert len(fresh) == 2 and all(r.image_key for r in fresh)
    old = next(v for v in before.values())
    assert any(np.linalg.norm(np.frombuffer(r.vector, "<f4") - np.frombuffer(old, "<f4")) < 0.05 for r in fresh)

    main(["purge-unknowns"])
    assert json.loads(capsys.readouterr().out) == {"purged": 0}


def test_evaluate_cli_on_a_sample_folder(cli_env, data_dir, tmp_path, capsys):
    main(["evaluate", str(data_dir / "faces" / "openface"), "--json", str(tmp_path / "eval.json")])
    out = capsys.readouterr().out
    assert out.startswith("service: images 6")
    result = json.loads((tmp_path / "eval.json").read_text())["pipelines"]["service"]
    assert result["identification"]["rank1"] == 1.0 and result["identification"]["probes"] == 4
    assert result["verification"]["pairs"] == 15 and result["verification"]["accuracy"] == 1.0


def test_evaluation_metrics_on_known_embeddings():
    ds = Dataset(root=Path("."), samples=[Sample("a1", "a"), Sample("a2", "a"), Sample("b1", "b"), Sample("c1", "c")],
                 pairs=None)
    e = {"a1": np.array([0.0, 0]), "a2": np.array([0.3, 0]), "b1": np.array([0.0, 0.5]), "c1": None}
    r = rank1(ds, e)
    assert r["probes"] == 2 and r["correct"] == 2
    v = verification(ds, e, 0.4)
    # pairs: a1-a2 genuine 0.3; a1-b1 0.5, a2-b1 0.583 impostors; 3 pairs with c1 (no face) = correct rejects
    assert v["pairs"] == 6 and v["accuracy"] == 1.0 and v["no_face_pairs"] == {"genuine": 0, "impostor": 3}
    assert eer(np.array([0.1, 0.2]), np.array([0.5, 0.6]))[0] == 0.0
    rate, _ = eer(np.array([0.1, 0.7]), np.array([0.5, 0.6]))
    assert rate == pytest.approx(0.5)
