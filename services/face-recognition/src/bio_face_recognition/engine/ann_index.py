"""Approximate 1:N face search for large galleries: a faiss IVF index with 8-bit scalar-quantised codes
in memory, exact re-ranking of the best candidates on the float32 vectors kept on disk.

Memory. Only the compressed codes (128 bytes per 128-d embedding), faiss's 8-byte ids and the two
32-byte id strings are resident: about 200 bytes per embedding. The exact float32 vectors (512 bytes)
live in immutable segment blobs of the blob store and are read with ``os.pread`` for the few
re-ranked candidates only, so they sit in the kernel's page cache, not in the process (a memory map
would count every touched page in the process's resident set).

Exactness. Below ``exact_below`` embeddings the index is a flat (exact) faiss index; above it an
IVF-SQ8 index is trained on the live vectors. Either way the ``rerank`` best candidates are re-scored
on the stored float32 vectors, so reported distances are exact and equal the exhaustive search's.

Persistence and replicas. ``save`` writes the faiss index and the id table as new blobs and then the
manifest ``<prefix>/manifest.json`` (atomic), stamped with the gallery version (``FaceEvent.version``).
Removed embeddings leave the faiss index at once and their stored vectors are zeroed at the next
``save`` (the segment holding them is rewritten). ``load`` refuses a manifest whose version is not the one the caller read from the database
(``StaleIndex``), so a replica never serves an index older than the database; it then rebuilds
(``build_from_rows``) or waits for the writer's save.
"""

from __future__ import annotations

import json
import math
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

from bio_face_recognition.engine.gallery import Candidate


class BlobStore(Protocol):
    """What the index needs of a blob store (bio_shared.storage.BlobStore has it); a protocol, so the
    engine imports no storage (and through it no database) code. Segments and index files are read
    by path (pread, memory maps): give the index a store whose files are plain, not sealed."""

    def put(self, key: str, data: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> bool: ...

    def exists(self, key: str) -> bool: ...

    def path_for(self, key: str) -> Path: ...

DIM = 128
ID_DTYPE = "S32"  # platform ids are uuid4 hex (32 ASCII characters)
MANIFEST = "manifest.json"
FORMAT = "bio-face-ann-1"


class StaleIndex(RuntimeError):
    """The persisted index is not at the version the caller expects."""


@dataclass(frozen=True)
class AnnSettings:
    exact_below: int = 20_000  # flat exact index below this many live embeddings
    rerank: int = 32  # candidates re-scored on the stored float32 vectors
    nprobe: int | None = None  # IVF lists scanned per probe; None: probe_share of the lists
    probe_share: float = 0.2  # bench-search tuning needed 15 % of the lists at 100k, 19 % at 1M
    lists_per_sqrt: float = 2.0  # IVF lists = lists_per_sqrt * sqrt(N) at training time
    train_max: int = 200_000  # training sample size for the IVF centroids and the quantiser


def _nlist(n: int, settings: AnnSettings) -> int:
    return max(16, int(settings.lists_per_sqrt * math.sqrt(max(n, 1))))


class VectorStore:
    """Append-only float32 rows in immutable segment blobs; row r is read with one ``pread``."""

    def __init__(self, store: BlobStore, prefix: str, dim: int = DIM) -> None:
        self.store, self.prefix, self.dim = store, prefix, dim
        self.keys: list[str] = []
        self.starts = np.zeros(1, np.int64)  # starts[i] = first row of segment i; starts[-1] = rows
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()

    @property
    def rows(self) -> int:
        return int(self.starts[-1])

    def append(self, vectors: np.ndarray) -> range:
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)
        first = self.rows
        if len(vectors):
            key = self.store.put(f"{self.prefix}/seg-{uuid.uuid4().hex}.f32", vectors.tobytes())
            self._attach([key], [len(vectors)])
        return range(first, self.rows)

    def _attach(self, keys: list[str], counts: list[int]) -> None:
        self.keys.extend(keys)
        self.starts = np.concatenate([self.starts, self.starts[-1] + np.cumsum(counts, dtype=np.int64)])

    def _fd(self, seg: int) -> int:
        fd = self._fds.get(seg)
        if fd is None:
            with self._lock:
                fd = self._fds.get(seg)
                if fd is None:
                    fd = os.open(self.store.path_for(self.keys[seg]), os.O_RDONLY)
                    self._fds[seg] = fd
        return fd

    def read(self, rows: Iterable[int]) -> np.ndarray:
        rows = np.asarray(list(rows), np.int64)
        out = np.empty((len(rows), self.dim), np.float32)
        segs = np.searchsorted(self.starts, rows, side="right") - 1
        size = 4 * self.dim
        for i, (r, s) in enumerate(zip(rows.tolist(), segs.tolist(), strict=True)):
            out[i] = np.frombuffer(os.pread(self._fd(s), size, (r - int(self.starts[s])) * size), np.float32)
        return out

    def read_all(self, rows: np.ndarray, chunk: int = 65_536) -> Iterable[np.ndarray]:
        """Rows in chunks (training, rebuilds)."""
        for i in range(0, len(rows), chunk):
            yield self.read(rows[i:i + chunk])

    def compact_tail(self, small: int = 65_536, max_small: int = 16) -> None:
        """Merge the trailing small segments (one per enrolment) into one blob; row numbers do not change."""
        big = [i for i in range(len(self.keys)) if self.starts[i + 1] - self.starts[i] >= small]
        first = big[-1] + 1 if big else 0
        if len(self.keys) - first <= max_small:
            return
        rows = np.arange(int(self.starts[first]), self.rows)
        key = self.store.put(f"{self.prefix}/seg-{uuid.uuid4().hex}.f32", self.read(rows).tobytes())
        with self._lock:
            self.close()
            old = self.keys[first:]
            self.keys = self.keys[:first] + [key]
            self.starts = np.concatenate([self.starts[:first + 1], [self.rows]])
        for k in old:
            self.store.delete(k)

    def erase(self, dead: np.ndarray) -> None:
        """Rewrite the segments holding the given rows with those rows zeroed (a deleted face's vector
        must not stay on disk); row numbers do not change."""
        segs = np.unique(np.searchsorted(self.starts, dead, side="right") - 1)
        for seg in segs.tolist():
            lo, hi = int(self.starts[seg]), int(self.starts[seg + 1])
            block = self.read(range(lo, hi))
            block[dead[(dead >= lo) & (dead < hi)] - lo] = 0.0
            key = self.store.put(f"{self.prefix}/seg-{uuid.uuid4().hex}.f32", block.tobytes())
            with self._lock:
                fd = self._fds.pop(seg, None)
                if fd is not None:
                    os.close(fd)
                old, self.keys[seg] = self.keys[seg], key
            self.store.delete(old)

    def manifest(self) -> list[dict[str, Any]]:
        return [{"key": k, "rows": int(self.starts[i + 1] - self.starts[i])} for i, k in enumerate(self.keys)]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class AnnIndex:
    """One gallery's embeddings (persons may have several), searchable by person."""

    def __init__(self, store: BlobStore, prefix: str, settings: AnnSettings | None = None, dim: int = DIM) -> None:
        self.settings = settings or AnnSettings()
        self.store, self.prefix, self.dim = store, prefix.strip("/"), dim
        self.vectors = VectorStore(store, self.prefix, dim)
        self.embedding_ids = np.zeros(0, ID_DTYPE)
        self.person_ids = np.zeros(0, ID_DTYPE)
        self.alive = np.zeros(0, bool)
        self._row_of: dict[bytes, int] | None = None  # embedding id -> row, built on first remove
        self.index: faiss.Index = self._flat()
        self.version: int | str = 0
        self.trained_on = 0
        self._erase: list[int] = []  # removed rows whose stored vectors are zeroed at the next save
        self._lock = threading.RLock()

    # -- state ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def person_count(self) -> int:
        return len(np.unique(self.person_ids[self.alive]))

    def distances_to(self, probe: np.ndarray, person_id: str) -> np.ndarray:
        """Exact distances from the probe to every live embedding of one person (same as Gallery's)."""
        rows = np.flatnonzero((self.person_ids == person_id.encode()) & self.alive)
        if not len(rows):
            return np.zeros(0, np.float32)
        diff = self.vectors.read(rows) - np.asarray(probe, np.float32).reshape(1, self.dim)
        return np.asarray(np.sqrt(np.einsum("ij,ij->i", diff, diff)), np.float64)

    @property
    def approximate(self) -> bool:
        return not isinstance(self.index, faiss.IndexIDMap)

    @property
    def nbytes(self) -> int:
        """Resident bytes of the index structures (codes, ids, id tables), not the on-disk vectors."""
        codes = self.index.sa_code_size() if self.approximate else 4 * self.dim
        return int(len(self) * (codes + 8) + self.embedding_ids.nbytes + self.person_ids.nbytes + self.alive.nbytes)

    def _flat(self) -> faiss.Index:
        return faiss.IndexIDMap(faiss.IndexFlatL2(self.dim))

    # -- updates ----------------------------------------------------------------------------------
    def add(self, embedding_ids: list[str], person_ids: list[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)
        if not (len(vectors) == len(embedding_ids) == len(person_ids)):
            raise ValueError("one embedding id and one person id per vector")
        if not np.isfinite(vectors).all():
            raise ValueError("embeddings must be finite")
        if any(len(i) > 32 or not i.isascii() for i in (*embedding_ids, *person_ids)):
            raise ValueError("ids are at most 32 ASCII characters (uuid hex)")
        with self._lock:
            rows = self.vectors.append(vectors)
            self.embedding_ids = np.concatenate([self.embedding_ids, np.asarray(embedding_ids, ID_DTYPE)])
            self.person_ids = np.concatenate([self.person_ids, np.asarray(person_ids, ID_DTYPE)])
            self.alive = np.concatenate([self.alive, np.ones(len(vectors), bool)])
            if self._row_of is not None:
                self._row_of.update((bytes(e), r) for e, r in zip(self.embedding_ids[rows.start:], rows, strict=True))
            ids = np.arange(rows.start, rows.stop, dtype=np.int64)
            if not self.approximate and len(self) + len(ids) >= self.settings.exact_below:
                self.index.add_with_ids(vectors, ids)
                self._train()
            else:
                self.index.add_with_ids(vectors, ids)

    def remove(self, embedding_ids: Iterable[str]) -> int:
        with self._lock:
            if self._row_of is None:
                self._row_of = {bytes(e): r for r, e in enumerate(self.embedding_ids) if self.alive[r]}
            rows = [r for e in embedding_ids if (r := self._row_of.pop(e.encode(), None)) is not None]
            if not rows:
                return 0
            self.alive[rows] = False
            self._erase.extend(rows)
            return int(self.index.remove_ids(np.asarray(rows, np.int64)))  # type: ignore[arg-type]  # faiss accepts ids

    def _train(self) -> None:
        """Switch to (or retrain) the IVF-SQ8 index on the live rows read from the vector store."""
        live = np.flatnonzero(self.alive)
        rng = np.random.default_rng(len(live))
        sample = np.sort(rng.choice(live, min(len(live), self.settings.train_max), replace=False))
        train = np.concatenate(list(self.vectors.read_all(sample)))
        quantizer = faiss.IndexFlatL2(self.dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, _nlist(len(live), self.settings),
                                              faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
        index.cp.max_points_per_centroid = max(40, len(train) // index.nlist)
        index.train(train)
        del train
        for start in range(0, len(live), 65_536):
            chunk_rows = live[start:start + 65_536]
            index.add_with_ids(self.vectors.read(chunk_rows), chunk_rows)
        self.index, self.trained_on = index, len(live)

    @property
    def retrain_due(self) -> bool:
        """The IVF lists were trained on far fewer embeddings than it holds now (run ``retrain`` in a job)."""
        return self.approximate and len(self) > 4 * max(self.trained_on, 1)

    def retrain(self) -> None:
        with self._lock:
            if self.alive.any():
                self._train()

    # -- search -----------------------------------------------------------------------------------
    def search(self, probe: np.ndarray, k: int = 1) -> list[Candidate]:
        """The k nearest persons (each at its closest re-ranked embedding), nearest first, exact distances."""
        if len(self) == 0 or k < 1:
            return []
        q = np.ascontiguousarray(probe, np.float32).reshape(1, self.dim)
        want = max(self.settings.rerank, 4 * k)
        if self.approximate:
            ivf: Any = self.index  # an IndexIVF here (the generic Index stub has no IVF attributes)
            nlist = ivf.nlist
            ivf.nprobe = min(nlist, self.settings.nprobe or max(8, math.ceil(self.settings.probe_share * nlist)))
        _, rows = self.index.search(q, min(want, len(self)))
        rows = rows[0][rows[0] >= 0]
        exact = self.vectors.read(rows)
        d = np.sqrt(np.maximum(np.einsum("ij,ij->i", exact - q, exact - q), 0.0))
        best: dict[bytes, tuple[float, int]] = {}
        for dist, row in sorted(zip(d.tolist(), rows.tolist(), strict=True)):
            person = bytes(self.person_ids[row])
            if person not in best:
                best[person] = (dist, row)
                if len(best) == k:
                    break
        return [Candidate(p.decode(), dist, self.embedding_ids[row].decode()) for p, (dist, row) in best.items()]

    # -- persistence ------------------------------------------------------------------------------
    def save(self, version: int | str, *, expect_version: int | str | None = None) -> str:
        """Persist at ``version``; with ``expect_version``, refuse when another writer moved the manifest."""
        with self._lock:
            if expect_version is not None:
                current = read_manifest(self.store, self.prefix)
                if current is not None and current["version"] != expect_version:
                    raise StaleIndex(f"index at version {current['version']}, expected {expect_version}")
            previous = read_manifest(self.store, self.prefix)
            if self._erase:
                self.vectors.erase(np.unique(np.asarray(self._erase, np.int64)))
                self._erase = []
            self.vectors.compact_tail()
            tag = uuid.uuid4().hex
            index_key = f"{self.prefix}/index-{tag}.faiss"
            faiss.write_index(self.index, str(self.store.path_for(index_key)))
            table = np.rec.fromarrays([self.embedding_ids, self.person_ids, self.alive], names="e,p,a")  # type: ignore[call-overload]
            table_key = f"{self.prefix}/ids-{tag}.npy"
            with open(self.store.path_for(table_key), "wb") as fh:
                np.save(fh, table, allow_pickle=False)
            manifest = {"format": FORMAT, "version": version, "dim": self.dim, "index": index_key,
                        "ids": table_key, "segments": self.vectors.manifest(), "approximate": self.approximate}
            key = self.store.put(f"{self.prefix}/{MANIFEST}", json.dumps(manifest).encode())
            self.version = version
            if previous is not None:  # readers load right after reading the manifest; keep one old generation
                keep = {index_key, table_key, previous["index"], previous["ids"], *self.vectors.keys,
                        *(seg["key"] for seg in previous["segments"])}
                _drop_older(self.store, self.prefix, keep)
            return key

    @classmethod
    def load(cls, store: BlobStore, prefix: str, version: int | str | None = None,
             settings: AnnSettings | None = None) -> AnnIndex:
        """The persisted index; ``StaleIndex`` when it is missing or not at ``version`` (None: any)."""
        manifest = read_manifest(store, prefix)
        if manifest is None or (version is not None and manifest["version"] != version):
            raise StaleIndex(f"no index at version {version} under {prefix}")
        out = cls(store, prefix, settings, manifest["dim"])
        out.index = faiss.read_index(str(store.path_for(manifest["index"])))
        table = np.load(store.path_for(manifest["ids"]), allow_pickle=False)
        out.embedding_ids, out.person_ids = np.ascontiguousarray(table["e"]), np.ascontiguousarray(table["p"])
        out.alive = np.ascontiguousarray(table["a"])
        out.vectors._attach([s["key"] for s in manifest["segments"]], [s["rows"] for s in manifest["segments"]])
        out.version = manifest["version"]
        return out


def read_manifest(store: BlobStore, prefix: str) -> dict[str, Any] | None:
    key = f"{prefix.strip('/')}/{MANIFEST}"
    if not store.exists(key):
        return None
    doc: dict[str, Any] = json.loads(store.get(key))
    return doc


def _drop_older(store: BlobStore, prefix: str, keep: set[str]) -> None:
    folder = store.path_for(prefix)
    for path in folder.glob("*"):
        key = f"{prefix}/{path.name}"
        if path.name.startswith(("index-", "ids-", "seg-")) and key not in keep:
            store.delete(key)


def build_from_rows(store: BlobStore, prefix: str, version: int | str, rows: Iterable[tuple[str, str, bytes]],
                    settings: AnnSettings | None = None, batch: int = 50_000) -> AnnIndex:
    """A fresh index from ``(embedding_id, person_id, float32 vector bytes)`` rows (e.g. the database), saved.
    The IVF lists are trained once on everything (not on the first batch)."""
    settings = settings or AnnSettings()
    index = AnnIndex(store, prefix, AnnSettings(**{**settings.__dict__, "exact_below": 2**62}))
    buf: list[tuple[str, str, bytes]] = []

    def flush() -> None:
        if buf:
            index.add([b[0] for b in buf], [b[1] for b in buf],
                      np.frombuffer(b"".join(b[2] for b in buf), np.float32).reshape(-1, index.dim))
            buf.clear()

    for row in rows:
        buf.append(row)
        if len(buf) >= batch:
            flush()
    flush()
    index.settings = settings
    if len(index) >= settings.exact_below:
        index.retrain()
    index.save(version)
    return index


def current(store: BlobStore, prefix: str, version: int | str,
            rows: Callable[[], Iterable[tuple[str, str, bytes]]], settings: AnnSettings | None = None) -> AnnIndex:
    """The index at ``version``: loaded from the blob store, or rebuilt from ``rows()`` when the persisted
    one is missing or stale (what a replica does when the database's gallery version moved on)."""
    try:
        return AnnIndex.load(store, prefix, version, settings)
    except StaleIndex:
        return build_from_rows(store, prefix, version, rows(), settings)
