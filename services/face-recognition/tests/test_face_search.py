"""1:N search through the service API on the approximate index (exact_search_below set low): the same answers
as exact search, enrol/delete seen at once, replicas on one database caught up without a rebuild, nothing
biometric in plain on disk, an unusable persisted index rebuilt instead of failing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select

from bio_face_recognition.engine.gallery import Gallery
from bio_face_recognition.models import FaceEmbedding, Person
from bio_face_recognition.runtime import face_state
from bio_face_recognition.service.common import bump
from bio_face_recognition.service.galleries import AnnEntry
from bio_shared.crypto import is_sealed
from bio_shared.db import session_scope
from bio_shared.jobs import new_id

P = "/api/v1/faces/events"
ANN = {"exact_search_below": 3, "ann_probe_share": 1.0}  # every list probed: the answer does not hang on k-means
FILLER = 1500  # above the engine's flat_below: a trained IVF-SQ8 index


def _filler(svc, eid: str, n: int = FILLER, seed: int = 3) -> None:
    """Strangers enrolled straight into the table (faster than photos); vectors at dlib's typical norm."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 128)).astype(np.float32)
    x *= (0.9 / np.linalg.norm(x, axis=1))[:, None]
    ids = [new_id() for _ in range(n)]
    model = face_state(svc.rt).model
    with session_scope(svc.rt.sessions) as s:
        s.execute(insert(Person), [{"id": i, "owner_id": "acct-a", "event_id": eid, "name": f"stranger {i}"}
                                   for i in ids])
        s.execute(insert(FaceEmbedding), [{"id": i, "owner_id": "acct-a", "event_id": eid, "person_id": i,
                                           "vector": v.astype("<f4").tobytes(), "model": model[0],
                                           "model_version": model[1]} for i, v in zip(ids, x, strict=True)])
        bump(s, eid)


def _index(svc, eid: str) -> AnnEntry:
    cached = face_state(svc.rt).galleries.cache.peek(eid)
    assert cached is not None and isinstance(cached[1], AnnEntry), "the event is not on the index"
    return cached[1]


def _top(res: dict) -> tuple:
    c = res["faces"][0]["candidates"][0]
    return c["person_id"], c["distance"], c["passed"], res["faces"][0]["passed"]


@pytest.fixture
def event(api, start, photos):
    """An event of three real people and FILLER strangers, with its ANN writer app."""
    svc = start(**ANN)
    eid = api.create_event(svc)["id"]
    people = {n: api.enroll(svc, eid, n, photos[f"{n}_a"])["id"] for n in ("obama", "hopkins", "clapton")}
    _filler(svc, eid)
    return svc, eid, people


def test_identify_on_the_index_equals_exact_search(api, start, photos, event):
    ann, eid, people = event
    exact = start()  # the default threshold: the same event searched on the exact matrix
    for probe in ("obama_b", "hopkins_b", "clapton_b", "kit"):
        got = api.identify(ann, eid, photos[probe], store_unknowns=False)
        want = api.identify(exact, eid, photos[probe], store_unknowns=False)
        assert _top(got) == _top(want), probe
        assert got["gallery_size"] == want["gallery_size"] == {"people": 3 + FILLER, "embeddings": 3 + FILLER}
        distances = {c["person_id"]: c["distance"] for c in want["faces"][0]["candidates"]}
        for c in got["faces"][0]["candidates"]:  # every distance reported is the exact one
            assert c["distance"] == distances.get(c["person_id"], c["distance"])
    assert _top(api.identify(ann, eid, photos["obama_b"], store_unknowns=False))[0] == people["obama"]
    index = _index(ann, eid).index
    assert index.approximate and len(index) == 3 + FILLER
    assert isinstance(face_state(exact.rt).galleries.cache.peek(eid)[1], Gallery)  # the default: exact
    # 1:1 verify on an indexed event reads the person's embeddings
    r = ann.client.post(f"{P}/{eid}/people/{people['hopkins']}/verify", headers=ann.auth(),
                        files={"file": ("p.jpg", photos["hopkins_b"], "image/jpeg")})
    assert r.status_code == 200 and r.json()["same_person"], r.text


def test_enroll_and_delete_change_the_index_in_place(api, photos, event):
    svc, eid, people = event
    assert not api.identify(svc, eid, photos["kit"], store_unknowns=False)["faces"][0]["passed"]
    galleries = face_state(svc.rt).galleries
    builds, loads = galleries.builds, galleries.loads
    kit = api.enroll(svc, eid, "kit", photos["kit"])
    res = api.identify(svc, eid, photos["kit"], store_unknowns=False)
    assert res["faces"][0]["match"]["person_id"] == kit["id"] and res["faces"][0]["match"]["distance"] < 1e-3
    r = svc.client.delete(f"{P}/{eid}/people/{people['obama']}", headers=svc.auth())
    assert r.status_code == 200, r.text
    res = api.identify(svc, eid, photos["obama_b"], store_unknowns=False)
    assert all(c["person_id"] != people["obama"] for c in res["faces"][0]["candidates"])
    assert not res["faces"][0]["passed"]
    # the writer applied both changes itself: no rebuild; only version checks hit the loader
    assert galleries.builds == builds and len(_index(svc, eid).index) == 3 + FILLER
    assert galleries.loads - loads <= 2


def test_a_replica_catches_up_by_diff_and_never_answers_from_an_older_index(api, start, photos, event):
    one, eid, people = event
    api.identify(one, eid, photos["obama_b"], store_unknowns=False)  # the writer builds and persists it
    two = start(**ANN)
    assert _top(api.identify(two, eid, photos["hopkins_b"], store_unknowns=False))[0] == people["hopkins"]
    galleries = face_state(two.rt).galleries
    assert galleries.builds == 0  # loaded the writer's persisted index, not rebuilt
    kit = api.enroll(one, eid, "kit", photos["kit"])  # through the other replica
    assert api.identify(two, eid, photos["kit"], store_unknowns=False)["faces"][0]["match"]["person_id"] == kit["id"]
    one.client.delete(f"{P}/{eid}/people/{people['hopkins']}", headers=one.auth())
    res = api.identify(two, eid, photos["hopkins_b"], store_unknowns=False)
    assert all(c["person_id"] != people["hopkins"] for c in res["faces"][0]["candidates"])
    assert galleries.builds == 0 and len(_index(two, eid).index) == 3 + FILLER
    # a third process starts from the persisted index (saved at once after the removal) and agrees
    three = start(**ANN)
    res = api.identify(three, eid, photos["kit"], store_unknowns=False)
    assert res["faces"][0]["match"]["person_id"] == kit["id"] and face_state(three.rt).galleries.builds == 0


def test_no_embedding_or_index_in_plain_on_disk(api, photos, event, var_dir: Path):
    svc, eid, people = event
    api.identify(svc, eid, photos["obama_b"], store_unknowns=False)
    with svc.rt.sessions() as s:
        vectors = list(s.scalars(select(FaceEmbedding.vector).where(FaceEmbedding.event_id == eid).limit(20)))
    needles = [v[:64] for v in vectors] + [np.frombuffer(v, "<f4").astype(np.float16).tobytes()[:64] for v in vectors]
    files = [p for p in var_dir.rglob("*") if p.is_file()]
    index_files = [p for p in files if "face-index" in p.parts]
    assert len(index_files) >= 3  # manifest, index part(s), id table
    assert all(is_sealed(p.read_bytes()) for p in index_files)
    for path in files:
        data = path.read_bytes()
        assert not any(n in data for n in needles), path


def test_corrupt_or_stale_persisted_index_is_rebuilt_not_a_500(api, start, photos, event, var_dir: Path):
    one, eid, people = event
    api.identify(one, eid, photos["obama_b"], store_unknowns=False)  # the writer builds and persists it
    part = next(p for p in var_dir.rglob("index-*.faiss"))
    part.write_bytes(part.read_bytes()[:100])  # truncated: does not open
    two = start(**ANN)
    assert _top(api.identify(two, eid, photos["clapton_b"], store_unknowns=False))[0] == people["clapton"]
    assert face_state(two.rt).galleries.builds == 1
    # the rebuilt one was persisted: another process loads it
    three = start(**ANN)
    api.identify(three, eid, photos["clapton_b"], store_unknowns=False)
    assert face_state(three.rt).galleries.builds == 0
    # a persisted index older than the database (writes it never saw) is caught up, not trusted as is
    _filler(one, eid, n=5, seed=9)
    four = start(**ANN)
    assert api.identify(four, eid, photos["clapton_b"], store_unknowns=False)["gallery_size"]["embeddings"] == (
        3 + FILLER + 5)
    assert face_state(four.rt).galleries.builds == 0


def test_an_event_that_shrinks_goes_back_to_the_exact_matrix(api, start, photos):
    svc = start(exact_search_below=4)
    eid = api.create_event(svc)["id"]
    ids = [api.enroll(svc, eid, n, photos[n])["id"] for n in ("obama_a", "hopkins_a", "clapton_a", "kit")]
    api.identify(svc, eid, photos["obama_b"], store_unknowns=False)
    assert isinstance(_index(svc, eid), AnnEntry)
    for pid in ids[1:]:
        svc.client.delete(f"{P}/{eid}/people/{pid}", headers=svc.auth())
    res = api.identify(svc, eid, photos["obama_b"], store_unknowns=False)
    assert res["faces"][0]["match"]["person_id"] == ids[0] and res["gallery_size"]["embeddings"] == 1
    assert not isinstance(face_state(svc.rt).galleries.cache.peek(eid)[1], AnnEntry)
    assert not [p for p in Path(svc.rt.blobs.root).rglob("*") if "face-index" in p.parts and p.is_file()]


def test_maintenance_persists_unsaved_changes_and_rebuilds_an_outgrown_index(api, start, photos):
    svc = start(exact_search_below=3, ann_snapshot_every=1000)
    eid = api.create_event(svc)["id"]
    for n in ("obama_a", "hopkins_a", "clapton_a"):
        api.enroll(svc, eid, n, photos[n])
    api.identify(svc, eid, photos["obama_b"], store_unknowns=False)  # built (flat: three embeddings), persisted
    galleries = face_state(svc.rt).galleries
    kit = api.enroll(svc, eid, "kit", photos["kit"])  # applied in memory, not persisted yet (1 < 1000)
    assert _index(svc, eid).index.changes == 1
    assert galleries.maintain(svc.rt.sessions) == {"saved": 1, "rebuilt": 0}
    other = start(exact_search_below=3)
    assert api.identify(other, eid, photos["kit"], store_unknowns=False)["faces"][0]["match"]["person_id"] == kit["id"]
    assert face_state(other.rt).galleries.loads == 1 and _index(other, eid).index.changes == 0  # no catch-up needed
    _filler(svc, eid, n=4000)  # the flat index outgrows itself
    api.identify(svc, eid, photos["obama_b"], store_unknowns=False)
    assert not _index(svc, eid).index.approximate and _index(svc, eid).index.rebuild_due
    assert galleries.maintain(svc.rt.sessions) == {"saved": 0, "rebuilt": 1}
    index = _index(svc, eid).index
    assert index.approximate and len(index) == 4004 and not index.rebuild_due
    res = api.identify(svc, eid, photos["kit"], store_unknowns=False)
    assert res["faces"][0]["match"]["person_id"] == kit["id"]


def test_id_diff_is_exact_whatever_the_ids():
    """The catch-up's id diff: the fast path (64-bit keys of uuid hex) and the fallback agree with sets."""
    from bio_face_recognition.service.ann import diff

    rng = np.random.default_rng(5)
    have = np.asarray([new_id() for _ in range(3000)], "S32")
    stored = np.concatenate([rng.permutation(have)[40:], np.asarray([new_id() for _ in range(25)], "S32")])
    same_key = [b"0" * 16 + b"a" * 16, b"0" * 16 + b"b" * 16]  # equal first 64 bits, different ids
    cases = [(have, stored), (np.append(have, same_key[0]), np.append(stored, same_key[1])),
             (np.append(have, [b"e1", b"e2"]), np.append(stored, b"e2")),  # not hex: the fallback
             (np.append(have, same_key), stored), (have[:0], stored), (have, stored[:0])]
    for a, b in cases:
        gone, missing = diff(a, b)
        assert set(gone.tolist()) == set(a.tolist()) - set(b.tolist())
        assert set(missing.tolist()) == set(b.tolist()) - set(a.tolist())
