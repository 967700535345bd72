"""The approximate 1:N face index (engine): recall and exact distances against exhaustive search,
incremental updates and their versions, persistence as sealed blobs (small galleries; the scale figures
come from ``bench-search``, the service's use of it from test_face_search.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from bio_face_recognition.engine.ann_index import AnnIndex, IndexUnavailable
from bio_face_recognition.engine.gallery import Gallery
from bio_shared.crypto import Envelope, KeyRing, LocalKek, is_sealed
from bio_shared.storage import BlobStore

DIM = 128
PREFIX = "owner/face-index/event1/model"


def _ids(start: int, n: int, tag: str = "e") -> list[str]:
    return [f"{tag}{i:031x}" for i in range(start, start + n)]


def _vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _mates(rng: np.random.Generator, rows: np.ndarray, spread: float = 0.35) -> np.ndarray:
    q = rows + spread * rng.standard_normal(rows.shape).astype(np.float32) / np.sqrt(DIM)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


class Stored:
    """The stored embeddings (the service's are database rows): what re-ranking reads."""

    def __init__(self, ids: list[str], vectors: np.ndarray) -> None:
        self.rows = {i: (i.replace("e", "p", 1), v) for i, v in zip(ids, vectors, strict=True)}
        self.fetched = 0

    def fetch(self, ids: list[str]) -> tuple[list[str], list[str], np.ndarray]:
        got = [i for i in ids if i in self.rows]
        self.fetched += len(got)
        vectors = np.asarray([self.rows[i][1] for i in got], np.float32).reshape(-1, DIM)
        return got, [self.rows[i][0] for i in got], vectors


@pytest.fixture
def store(tmp_path) -> BlobStore:
    ring = KeyRing([LocalKek("test", os.urandom(32))])
    return BlobStore(tmp_path / "blobs", Envelope(ring))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    gallery = _vectors(rng, 6000)
    picked = rng.choice(len(gallery), 300, replace=False)
    return _ids(0, len(gallery)), gallery, picked, _mates(rng, gallery[picked])


def _chunks(ids: list[str], vectors: np.ndarray, size: int = 1000):
    for at in range(0, len(ids), size):
        yield ids[at:at + size], vectors[at:at + size]


def test_approximate_search_finds_exact_nearest_with_exact_distances(data):
    ids, gallery, picked, probes = data
    index = AnnIndex.build(_chunks(ids, gallery), version=3)
    assert index.approximate and len(index) == len(gallery) and index.version == 3 and index.changes == 0
    exact, stored = Gallery([i.replace("e", "p", 1) for i in ids], ids, gallery), Stored(ids, gallery)
    hits = 0
    for row, q in zip(picked, probes, strict=True):
        got, want = index.search(q, 5, stored), exact.search(q, 5)
        hits += got[0].embedding_id == ids[row]
        assert got[0].distance == want[0].distance or got[0].embedding_id != want[0].embedding_id
        for c in got:  # every reported distance is the exact one
            assert c.distance == pytest.approx(float(np.linalg.norm(stored.rows[c.embedding_id][1] - q)), abs=1e-6)
    assert hits / len(picked) >= 0.99
    assert stored.fetched <= len(picked) * 32  # re-ranking reads only the candidates
    assert index.nbytes < len(gallery) * 200  # codes, not float32 vectors


def test_exact_mode_equals_exhaustive_search(data):
    ids, gallery, picked, probes = data
    small = AnnIndex.build(_chunks(ids[:800], gallery[:800]), version=0)
    assert not small.approximate
    exact, stored = Gallery([i.replace("e", "p", 1) for i in ids[:800]], ids[:800], gallery[:800]), Stored(ids, gallery)
    for q in probes[:50]:
        assert small.search(q, 3, stored) == exact.search(q, 3)


def test_incremental_add_remove_and_versions(data):
    ids, gallery, picked, probes = data
    index = AnnIndex.build(_chunks(ids[:5000], gallery[:5000]), version=1)
    stored = Stored(ids, gallery)
    assert index.add(ids[4990:5010], gallery[4990:5010]) == 10  # the ten already indexed are skipped
    assert len(index) == 5010 and index.changes == 10
    row = int(np.flatnonzero(np.asarray(picked) == 5005)[0]) if 5005 in picked else None
    q = gallery[5005] if row is None else probes[row]
    assert index.search(q, 1, stored)[0].embedding_id == ids[5005]
    # a change applies only on the version it was made from
    assert not index.apply(5, 6, [], np.zeros((0, DIM), np.float32), [ids[5005]])
    assert index.search(q, 1, stored)[0].embedding_id == ids[5005] and index.version == 1
    assert index.apply(1, 2, ids[5010:5011], gallery[5010:5011], [ids[5005]])
    assert index.version == 2 and len(index) == 5010
    assert all(c.embedding_id != ids[5005] for c in index.search(q, 5, stored))
    assert index.search(gallery[5010], 1, stored)[0].embedding_id == ids[5010]
    assert index.remove([ids[5005], "nothere"]) == 0 and index.remove([]) == 0
    assert not index.rebuild_due
    index.add(ids[5011:], gallery[5011:])
    assert len(index) == len(gallery) - 1


def test_persisted_as_sealed_blobs_and_loaded_equal(store, data, tmp_path):
    ids, gallery, picked, probes = data
    stored = Stored(ids, gallery)
    index = AnnIndex.build(_chunks(ids, gallery), version=4)
    index.remove(ids[:3])
    assert index.save(store, PREFIX) and index.changes == 0
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert len(files) == 3 and all(is_sealed(p.read_bytes()) for p in files)  # manifest, index part, ids
    back = AnnIndex.load(store, PREFIX)
    assert back.version == 4 and len(back) == len(index) and back.approximate
    for q in probes[:40]:
        assert back.search(q, 3, stored) == index.search(q, 3, stored)
    # a newer snapshot is never overwritten by an older index
    back.version = 9
    assert back.save(store, PREFIX)
    assert not index.save(store, PREFIX) and AnnIndex.load(store, PREFIX).version == 9
    # after a removal the previous generation goes at once (its codes hold the removed face)
    back.remove(ids[10:11])
    back.save(store, PREFIX, keep_previous=False)
    assert len([p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]) == 3
    assert AnnIndex.delete_persisted(store, PREFIX) == 3
    with pytest.raises(IndexUnavailable):
        AnnIndex.load(store, PREFIX)


def test_corrupt_or_foreign_blobs_are_unavailable_not_crashes(store, data, tmp_path):
    ids, gallery, _, _ = data
    index = AnnIndex.build(_chunks(ids[:2000], gallery[:2000]), version=1)
    index.save(store, PREFIX)
    part = next((tmp_path / "blobs").rglob("index-*"))
    sealed = part.read_bytes()
    part.write_bytes(sealed[:-40] + bytes(40))  # tampered: the seal does not open
    with pytest.raises(IndexUnavailable):
        AnnIndex.load(store, PREFIX)
    part.write_bytes(sealed)
    assert len(AnnIndex.load(store, PREFIX)) == 2000
    store.put(f"{PREFIX}/manifest.json", b"{not json")
    with pytest.raises(IndexUnavailable):
        AnnIndex.load(store, PREFIX)
    other = BlobStore(tmp_path / "blobs", Envelope(KeyRing([LocalKek("other", os.urandom(32))])))
    index.save(store, PREFIX)
    with pytest.raises(IndexUnavailable):  # sealed under a key this process does not have
        AnnIndex.load(other, PREFIX)


def test_bad_input_is_refused_and_changes_nothing(data):
    ids, gallery, _, _ = data
    index = AnnIndex.build(_chunks(ids[:100], gallery[:100]), version=0)
    with pytest.raises(ValueError):
        index.add(["x" * 33], gallery[:1])
    with pytest.raises(ValueError):
        index.add(ids[200:201], np.full((1, DIM), np.nan, np.float32))
    with pytest.raises(ValueError):
        index.add(ids[200:202], gallery[:1])
    assert len(index) == 100 and len(index.embedding_ids) == 100
