"""Approximate 1:N face search for large galleries: a faiss IVF index of 8-bit scalar-quantised codes in
memory, exact re-ranking of the best candidates on the stored embeddings.

Memory. Resident are the codes (128 bytes per 128-d embedding), faiss's 8-byte ids and a 32-byte embedding
id per row: about 170 bytes per embedding. No float32 vector is kept: the ``rerank`` best candidates are
fetched by id from a ``VectorSource`` (the service reads them from the database's sealed column) and
re-scored with ``Gallery``'s arithmetic, so reported distances are those of the exhaustive search.

Rows. faiss ids are row numbers into ``embedding_ids``. A removed embedding leaves faiss at once
(``remove_ids``); its row stays, dead, until the next rebuild (``rebuild_due``).

Flat or IVF. Below ``flat_below`` embeddings the index is flat (exact); otherwise IVF-SQ8 trained on the
first ``train_max`` vectors of the build stream (the service streams rows ordered by their uuid4 ids, a
uniform sample). Later embeddings are encoded with the trained lists; ``rebuild_due`` says when the lists
no longer fit the gallery.

Versions. ``version`` is the caller's gallery version (``FaceEvent.version``) that the content is at least
as new as; ``apply`` moves it one step with that step's change only when the index is at the step before.

Persistence. ``save`` writes the faiss index (``faiss.serialize_index``, in parts of at most ``PART_BYTES``)
and the id table as blobs, then the manifest, all as bytes through the caller's blob store (the
platform's seals every blob: the codes are biometric data too). ``load`` reads them back; any failure
(missing, tampered, not openable, wrong format) is ``IndexUnavailable``, and the caller rebuilds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import math
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import faiss
import numpy as np

from bio_face_recognition.engine.gallery import Candidate, Gallery

DIM = 128
ID_DTYPE = "S32"  # platform ids are uuid4 hex (32 ASCII characters)
MANIFEST = "manifest.json"
FORMAT = "bio-face-ann-2"
PART_BYTES = 64 << 20  # one sealed blob stays far below AES-GCM's 2 GiB per message and bounds copies


class BlobStore(Protocol):
    """What the index needs of a blob store (bio_shared.storage.BlobStore has it): bytes in, bytes out.
    A protocol, so the engine imports no storage (and through it no database) code."""

    def put(self, key: str, data: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> bool: ...

    def exists(self, key: str) -> bool: ...


class VectorSource(Protocol):
    """Where re-ranking reads the exact embeddings of its candidates."""

    def fetch(self, embedding_ids: list[str]) -> tuple[list[str], list[str], np.ndarray]:
        """``(embedding ids found, their person ids, their float32 vectors as rows)``; ids no longer
        stored are left out."""
        ...


class IndexUnavailable(RuntimeError):
    """No usable persisted index (missing, corrupt, or of another format)."""


class IndexMissing(IndexUnavailable):
    """None was persisted (yet)."""


@dataclass(frozen=True)
class AnnSettings:
    flat_below: int = 1_000  # IVF lists trained on fewer vectors are noise: exact flat index below this
    rerank: int = 32  # candidates re-scored on the stored vectors
    nprobe: int | None = None  # IVF lists scanned per probe; None: probe_share of the lists
    probe_share: float = 0.2  # bench-search tuning needed 15 % of the lists at 100k, 19 % at 1M
    lists_per_sqrt: float = 2.0  # IVF lists = lists_per_sqrt * sqrt(N) at training time
    train_max: int = 200_000  # training sample for the IVF centroids and the quantiser


Chunk = tuple[list[str], np.ndarray]  # embedding ids and their (n, dim) float32 vectors


class AnnIndex:
    """One gallery's embeddings; persons (and their several embeddings) come from the ``VectorSource``."""

    def __init__(self, settings: AnnSettings | None = None, dim: int = DIM) -> None:
        self.settings, self.dim = settings or AnnSettings(), dim
        self.index: faiss.Index = faiss.IndexIDMap(faiss.IndexFlatL2(dim))
        self.embedding_ids = np.zeros(0, ID_DTYPE)
        self.alive = np.zeros(0, bool)
        self.version = -1
        self.trained_on = 0
        self.changes = 0  # embeddings added or removed since the last save (or build)
        self.lock = threading.RLock()  # faiss may not be searched while it is changed

    # -- state ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def approximate(self) -> bool:
        return not isinstance(self.index, faiss.IndexIDMap)

    @property
    def nbytes(self) -> int:
        """Resident bytes of the index structures (codes, faiss ids, id table)."""
        codes = self.index.sa_code_size() if self.approximate else 4 * self.dim
        return int(len(self) * (codes + 8) + self.embedding_ids.nbytes + self.alive.nbytes)

    @property
    def rebuild_due(self) -> bool:
        """The lists were trained on far fewer embeddings than are indexed now, or many rows are dead."""
        rows = len(self.embedding_ids)
        grown = self.approximate and len(self) > 4 * max(self.trained_on, 1)
        outgrown_flat = not self.approximate and len(self) >= 4 * max(self.settings.flat_below, 1)
        return grown or outgrown_flat or (rows > 1000 and rows - len(self) > rows // 4)

    def live_ids(self) -> np.ndarray:
        with self.lock:
            return self.embedding_ids[self.alive]

    def _present(self, ids: np.ndarray) -> np.ndarray:
        """Mask of the given ids already indexed (and alive)."""
        if len(ids) <= 8:  # enrolments: a vectorised compare per id beats np.isin's sort of every id
            return np.asarray([bool((self.alive & (self.embedding_ids == e)).any()) for e in ids], bool)
        return np.isin(ids, self.embedding_ids[self.alive])

    # -- updates ----------------------------------------------------------------------------------
    def add(self, embedding_ids: list[str], vectors: np.ndarray) -> int:
        """Index embeddings not indexed yet (an id already present is skipped); returns how many were added."""
        vectors = np.ascontiguousarray(vectors, np.float32).reshape(-1, self.dim)
        if len(vectors) != len(embedding_ids):
            raise ValueError("one embedding id per vector")
        if not np.isfinite(vectors).all():
            raise ValueError("embeddings must be finite")
        if any(len(i) > 32 or not i.isascii() for i in embedding_ids):
            raise ValueError("ids are at most 32 ASCII characters (uuid hex)")
        ids = np.asarray(embedding_ids, ID_DTYPE)
        with self.lock:
            new = ~self._present(ids)
            ids, vectors = ids[new], vectors[new]
            if not len(ids):
                return 0
            first = len(self.embedding_ids)
            self.embedding_ids = np.concatenate([self.embedding_ids, ids])
            self.alive = np.concatenate([self.alive, np.ones(len(ids), bool)])
            self.index.add_with_ids(vectors, np.arange(first, first + len(ids), dtype=np.int64))
            self.changes += len(ids)
            return len(ids)

    def remove(self, embedding_ids: Iterable[str]) -> int:
        ids = np.asarray(list(embedding_ids), ID_DTYPE)
        if not len(ids):
            return 0
        with self.lock:
            rows = np.flatnonzero(np.isin(self.embedding_ids, ids) & self.alive)
            if not len(rows):
                return 0
            self.alive[rows] = False
            self.changes += len(rows)
            return int(self.index.remove_ids(rows.astype(np.int64)))  # type: ignore[arg-type]  # faiss takes ids

    def apply(self, from_version: int, to_version: int, add_ids: list[str], add_vectors: np.ndarray,
              remove_ids: Iterable[str]) -> bool:
        """One committed change (``from_version`` -> ``to_version``), only if the index is at ``from_version``."""
        with self.lock:
            if self.version != from_version:
                return False
            self.remove(remove_ids)
            if add_ids:
                self.add(add_ids, add_vectors)
            self.version = to_version
            return True

    # -- build ------------------------------------------------------------------------------------
    @classmethod
    def build(cls, chunks: Iterable[Chunk], version: int, settings: AnnSettings | None = None,
              size_hint: int | None = None, dim: int = DIM) -> AnnIndex:
        """An index of every embedding of the stream: the first ``train_max`` vectors train the IVF lists
        (``size_hint``, the expected total, sizes them), the rest is encoded as it streams by."""
        out = cls(settings, dim)
        held: list[Chunk] = []
        count = 0
        stream = iter(chunks)
        for ids, vectors in stream:  # hold the training sample
            held.append((ids, vectors))
            count += len(ids)
            if count >= out.settings.train_max:
                break
        total = max(count, size_hint or 0)
        if total >= out.settings.flat_below:
            out._train(np.concatenate([v for _, v in held]).astype(np.float32), total)
        for ids, vectors in held:
            out.add(ids, vectors)
        held.clear()
        for ids, vectors in stream:
            out.add(ids, vectors)
        out.version, out.changes = version, 0
        return out

    def _train(self, sample: np.ndarray, total: int) -> None:
        nlist = max(16, int(self.settings.lists_per_sqrt * math.sqrt(total)))
        nlist = min(nlist, max(1, len(sample) // 4))
        index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(self.dim), self.dim, nlist,
                                              faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
        index.cp.max_points_per_centroid = max(40, len(sample) // nlist)
        index.train(sample)
        self.index, self.trained_on = index, len(sample)

    # -- search -----------------------------------------------------------------------------------
    def search(self, probe: np.ndarray, k: int, source: VectorSource) -> list[Candidate]:
        """The k nearest persons (each at its closest re-ranked embedding), nearest first, exact distances."""
        q = np.ascontiguousarray(probe, np.float32).reshape(1, self.dim)
        with self.lock:
            if len(self) == 0 or k < 1:
                return []
            if self.approximate:
                ivf: Any = self.index  # an IndexIVF (the generic Index stub has no IVF attributes)
                share = self.settings.nprobe or max(8, math.ceil(self.settings.probe_share * ivf.nlist))
                ivf.nprobe = min(ivf.nlist, share)
            _, rows = self.index.search(q, min(max(self.settings.rerank, 4 * k), len(self)))
            found = rows[0][rows[0] >= 0]
            ids = [bytes(e).decode() for e in self.embedding_ids[found]]
        got, persons, vectors = source.fetch(ids)
        if not got:
            return []
        return Gallery(persons, got, vectors).search(q[0], k)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, store: BlobStore, prefix: str, *, keep_previous: bool = True) -> bool:
        """Persist at this index's version, unless a newer one is persisted already. The generation
        before the previous one is deleted (a reader that has just read the previous manifest still
        finds its parts); without ``keep_previous`` the previous one too (after a removal: a deleted
        face's codes must not stay on disk; a reader caught in between rebuilds)."""
        prefix = prefix.strip("/")
        with self.lock:
            data = faiss.serialize_index(self.index)
            table = self.embedding_ids.tobytes() + np.packbits(self.alive).tobytes()
            version, rows, saved_changes = self.version, len(self.embedding_ids), self.changes
            trained_on = self.trained_on
        previous = _manifest_or_none(store, prefix)
        if previous is not None and previous.get("version", -1) > version:
            return False
        tag = uuid.uuid4().hex
        parts = [store.put(f"{prefix}/index-{tag}-{i}.faiss", data[at:at + PART_BYTES].tobytes())
                 for i, at in enumerate(range(0, len(data), PART_BYTES))]
        del data
        ids_key = store.put(f"{prefix}/ids-{tag}.bin", table)
        manifest = {"format": FORMAT, "version": version, "dim": self.dim, "rows": rows, "trained_on": trained_on,
                    "parts": parts, "ids": ids_key, "previous": _keys(previous) if previous and keep_previous else []}
        store.put(f"{prefix}/{MANIFEST}", json.dumps(manifest).encode())
        retired = [*previous.get("previous", []), *([] if keep_previous else _keys(previous))] if previous else []
        for key in retired:
            store.delete(key)
        with self.lock:
            self.changes -= saved_changes
        return True

    @classmethod
    def load(cls, store: BlobStore, prefix: str, settings: AnnSettings | None = None) -> AnnIndex:
        prefix = prefix.strip("/")
        try:
            manifest = _manifest_or_none(store, prefix, strict=True)
            if manifest is None:
                raise IndexMissing(f"no index under {prefix}")
            if manifest.get("format") != FORMAT:
                raise IndexUnavailable(f"index of format {manifest.get('format')!r}")
            out = cls(settings, int(manifest["dim"]))
            blobs = [store.get(k) for k in manifest["parts"]]
            data = np.empty(sum(len(b) for b in blobs), np.uint8)  # one copy, not a join and a copy
            at = 0
            for b in blobs:
                data[at:at + len(b)] = np.frombuffer(b, np.uint8)
                at += len(b)
            del blobs
            out.index = faiss.deserialize_index(data)
            del data
            rows = int(manifest["rows"])
            table = store.get(manifest["ids"])
            out.embedding_ids = np.frombuffer(table[:32 * rows], ID_DTYPE).copy()
            out.alive = np.unpackbits(np.frombuffer(table[32 * rows:], np.uint8), count=rows).astype(bool)
            if len(out.embedding_ids) != rows or int(out.alive.sum()) != out.index.ntotal or out.index.d != out.dim:
                raise IndexUnavailable("index and id table disagree")
            out.version, out.trained_on = int(manifest["version"]), int(manifest.get("trained_on", 0))
            del table
            _trim_heap()
            return out
        except IndexUnavailable:
            raise
        except Exception as exc:  # a blob missing, tampered or not openable; faiss refusing the bytes
            raise IndexUnavailable(f"persisted index under {prefix} is unusable: {exc}") from exc

    @staticmethod
    def delete_persisted(store: BlobStore, prefix: str) -> int:
        prefix = prefix.strip("/")
        manifest = _manifest_or_none(store, prefix)
        keys = [*_keys(manifest), *manifest.get("previous", [])] if manifest else []
        return sum(store.delete(k) for k in [*keys, f"{prefix}/{MANIFEST}"])


def _trim_heap() -> None:
    """Give the load's freed buffers (sealed and opened parts, two copies of the index) back to the system:
    glibc keeps freed blocks below its mmap threshold (up to 32 MB) on the heap, which would stay in
    the process's resident set."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


def _keys(manifest: dict[str, Any] | None) -> list[str]:
    return [*manifest["parts"], manifest["ids"]] if manifest else []


def _manifest_or_none(store: BlobStore, prefix: str, strict: bool = False) -> dict[str, Any] | None:
    key = f"{prefix}/{MANIFEST}"
    if not store.exists(key):
        return None
    try:
        doc: dict[str, Any] = json.loads(store.get(key))
        return doc
    except Exception:
        if strict:
            raise
        return None
