"""The approximate 1:N face index: recall against exact search, incremental updates, persistence and
version staleness (small galleries; the scale figures come from ``bench-search``)."""

from __future__ import annotations

import numpy as np
import pytest

from bio_face_recognition.engine.ann_index import AnnIndex, AnnSettings, StaleIndex, current, read_manifest
from bio_face_recognition.engine.gallery import Gallery
from bio_shared.storage import BlobStore

DIM = 128


def _ids(start: int, n: int, tag: str = "e") -> list[str]:
    return [f"{tag}{i:031x}" for i in range(start, start + n)]


def _vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _mates(rng: np.random.Generator, rows: np.ndarray, spread: float = 0.35) -> np.ndarray:
    q = rows + spread * rng.standard_normal(rows.shape).astype(np.float32) / np.sqrt(DIM)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def store(tmp_path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    gallery = _vectors(rng, 6000)
    picked = rng.choice(len(gallery), 300, replace=False)
    return gallery, picked, _mates(rng, gallery[picked])


def _built(store: BlobStore, gallery: np.ndarray, settings: AnnSettings) -> AnnIndex:
    index = AnnIndex(store, "owner/ann/event1", settings)
    for start in range(0, len(gallery), 1000):  # incremental, crossing the exact -> IVF switch
        ids = _ids(start, min(1000, len(gallery) - start))
        index.add(ids, [i.replace("e", "p", 1) for i in ids], gallery[start:start + len(ids)])
    return index


def test_approximate_search_finds_exact_nearest_with_exact_distances(store, data):
    gallery, picked, probes = data
    index = _built(store, gallery, AnnSettings(exact_below=2000, nprobe=16))
    assert index.approximate and len(index) == len(gallery)
    exact = Gallery(_ids(0, len(gallery), "p"), _ids(0, len(gallery)), gallery)
    agree = 0
    for q, row in zip(probes, picked, strict=True):
        got, want = index.search(q, k=3), exact.search(q, k=3)
        agree += got[0].embedding_id == want[0].embedding_id
        assert got[0].embedding_id == _ids(int(row), 1)[0] or got[0].distance <= want[0].distance + 1e-5
        assert got[0].distance == pytest.approx(want[0].distance, abs=1e-5) or got[0].person_id != want[0].person_id
    assert agree / len(probes) >= 0.99


def test_exact_mode_equals_exhaustive_search(store, data):
    gallery, picked, probes = data
    small = gallery[:1500]
    people = [f"p{i % 500:031x}" for i in range(len(small))]  # three embeddings per person
    index = AnnIndex(store, "o/ann/small", AnnSettings(exact_below=20_000))
    index.add(_ids(0, len(small)), people, small)
    assert not index.approximate
    exact = Gallery(people, _ids(0, len(small)), small)
    for q in probes[:50]:
        got, want = index.search(q, k=5), exact.search(q, k=5)
        assert [c.person_id for c in got] == [c.person_id for c in want]
        assert [c.embedding_id for c in got] == [c.embedding_id for c in want]
        assert np.allclose([c.distance for c in got], [c.distance for c in want], atol=1e-5)
    assert index.person_count == exact.person_count == 500
    assert np.allclose(index.distances_to(probes[0], people[7]), exact.distances_to(probes[0], people[7]), atol=1e-5)
    assert len(index.distances_to(probes[0], people[7])) == 3 and len(index.distances_to(probes[0], "nobody")) == 0


def test_incremental_add_and_remove(store, data):
    gallery, picked, probes = data
    index = _built(store, gallery[:4000], AnnSettings(exact_below=2000, nprobe=32))
    target = int(picked[picked < 4000][0])
    probe = _mates(np.random.default_rng(1), gallery[target:target + 1])[0]
    assert index.search(probe)[0].embedding_id == _ids(target, 1)[0]
    assert index.remove([_ids(target, 1)[0], "not-there"]) == 1
    assert index.remove([_ids(target, 1)[0]]) == 0  # already gone
    assert all(c.embedding_id != _ids(target, 1)[0] for c in index.search(probe, k=20))
    index.add(["new00000000000000000000000000000"], ["newperson"], probe[None])
    top = index.search(probe)[0]
    assert (top.embedding_id, top.person_id, top.distance) == ("new00000000000000000000000000000", "newperson",
                                                                pytest.approx(0.0, abs=1e-6))
    assert len(index) == 4000


def test_persistence_round_trip_and_version_staleness(store, data):
    gallery, picked, probes = data
    index = _built(store, gallery[:3000], AnnSettings(exact_below=2000))
    index.remove(_ids(5, 1))
    index.save(version=4)
    loaded = AnnIndex.load(store, "owner/ann/event1", version=4, settings=AnnSettings(exact_below=2000))
    assert loaded.approximate and len(loaded) == len(index) == 2999 and loaded.version == 4
    for q in probes[:40]:
        assert loaded.search(q, k=3) == index.search(q, k=3)
    assert not loaded.vectors.read([5]).any()  # a removed face's vector does not stay on disk
    assert np.array_equal(loaded.vectors.read([4, 6]), gallery[[4, 6]])
    with pytest.raises(StaleIndex):  # the database moved on (an enrol elsewhere): this replica must not serve v4
        AnnIndex.load(store, "owner/ann/event1", version=5)
    with pytest.raises(StaleIndex):
        AnnIndex.load(store, "owner/ann/other", version=1)
    # a writer that loaded v4 saves v5; a second writer still on v4 is refused
    loaded.add(_ids(90_000, 1), ["late"], probes[:1])
    loaded.save(version=5, expect_version=4)
    index.add(_ids(90_001, 1), ["lost"], probes[1:2])
    with pytest.raises(StaleIndex):
        index.save(version=5, expect_version=4)
    fresh = AnnIndex.load(store, "owner/ann/event1", version=5)
    assert fresh.search(probes[0])[0].person_id == "late"
    assert read_manifest(store, "owner/ann/event1")["version"] == 5


def test_many_small_enrolments_are_compacted_without_moving_rows(store, data):
    gallery, _, probes = data
    index = AnnIndex(store, "o/ann/many", AnnSettings())
    for i in range(40):
        index.add(_ids(i, 1), _ids(i, 1, "p"), gallery[i:i + 1])
    assert len(index.vectors.keys) == 40
    before = [index.search(q, k=2) for q in probes[:10]]
    index.save(version=1)
    assert len(index.vectors.keys) == 1
    assert [index.search(q, k=2) for q in probes[:10]] == before
    assert len(list(store.path_for("o/ann/many").glob("seg-*"))) == 1
    loaded = AnnIndex.load(store, "o/ann/many", 1)
    assert np.array_equal(loaded.vectors.read(range(40)), gallery[:40])


def test_bad_input_is_refused_and_changes_nothing(store, data):
    gallery, _, _ = data
    index = AnnIndex(store, "o/ann/bad")
    with pytest.raises(ValueError):
        index.add(_ids(0, 2), _ids(0, 1, "p"), gallery[:2])
    bad = gallery[:1].copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError):
        index.add(_ids(0, 1), _ids(0, 1, "p"), bad)
    with pytest.raises(ValueError):
        index.add(["x" * 33], ["p"], gallery[:1])
    assert len(index) == 0 and index.search(gallery[0]) == []


def test_current_rebuilds_a_stale_index_from_the_database_rows(store, data):
    gallery, _, probes = data
    rows = [(i, i.replace("e", "p", 1), gallery[k].tobytes()) for k, i in enumerate(_ids(0, 2500))]
    settings = AnnSettings(exact_below=2000)
    built = current(store, "o/ann/ev", 3, lambda: iter(rows), settings)
    assert built.approximate and built.trained_on == 2500 and read_manifest(store, "o/ann/ev")["version"] == 3
    same = current(store, "o/ann/ev", 3, lambda: pytest.fail("must load, not rebuild"), settings)
    assert same.search(probes[0], k=2) == built.search(probes[0], k=2)
    newer = current(store, "o/ann/ev", 4, lambda: iter(rows[:100]), settings)  # the database moved on
    assert len(newer) == 100 and not newer.approximate and newer.version == 4
    newest = current(store, "o/ann/ev", 5, lambda: iter(rows[:10]), settings)
    assert len(newest) == 10
    # only this generation and the previous one stay on disk (segments of v3 are gone)
    assert len(list(store.path_for("o/ann/ev").glob("seg-*"))) == 2
    assert len(list(store.path_for("o/ann/ev").glob("index-*"))) == 2
