"""Exact 1:N search over an event's embedding matrix (distances; their calibrated score is bio_shared.scoring).

A gallery holds every embedding of an event as one float32 matrix, rows grouped by person. A probe's
squared Euclidean distances to all rows are ``|g|^2 - 2 g.q + |q|^2`` (one matrix-vector product),
the best distance per person is a ``minimum.reduceat`` over the groups, and the top k persons come
from ``argpartition``: exact, O(N) and about 1 ms per 10,000 embeddings on one core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Candidate:
    person_id: str
    distance: float
    embedding_id: str


class Gallery:
    """Embeddings of one event: ``matrix`` (N, D) float32 with rows of one person contiguous."""

    def __init__(self, person_ids: list[str], embedding_ids: list[str], matrix: np.ndarray) -> None:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        if matrix.ndim != 2 or len(matrix) != len(embedding_ids) or len(person_ids) != len(embedding_ids):
            raise ValueError("one person id and one embedding id per matrix row")
        if all(person_ids[i] <= person_ids[i + 1] for i in range(len(person_ids) - 1)):
            self.matrix, self.embedding_ids, sorted_people = matrix, list(embedding_ids), list(person_ids)
        else:  # group the rows of each person together
            order = sorted(range(len(person_ids)), key=person_ids.__getitem__)
            self.matrix = matrix[order]
            self.embedding_ids = [embedding_ids[i] for i in order]
            sorted_people = [person_ids[i] for i in order]
        starts = [i for i in range(len(sorted_people)) if i == 0 or sorted_people[i] != sorted_people[i - 1]]
        self.starts = np.asarray(starts, dtype=np.int64)
        self.people = [sorted_people[i] for i in starts]
        self._index = {p: i for i, p in enumerate(self.people)}
        self.norms = np.einsum("ij,ij->i", self.matrix, self.matrix) if len(self.matrix) else np.zeros(0, np.float32)

    def __len__(self) -> int:
        return len(self.embedding_ids)

    @property
    def person_count(self) -> int:
        return len(self.people)

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes + self.norms.nbytes + self.starts.nbytes)

    def squared_distances(self, probe: np.ndarray) -> np.ndarray:
        q = np.asarray(probe, dtype=np.float32).ravel()
        # einsum, not BLAS: one thread, no thread pool spinning against the request threads
        d2: np.ndarray = self.norms - 2.0 * np.einsum("ij,j->i", self.matrix, q) + float(q @ q)
        np.maximum(d2, 0.0, out=d2)
        return d2

    def search(self, probe: np.ndarray, k: int = 1) -> list[Candidate]:
        """The k nearest persons (each at its closest embedding), nearest first."""
        if len(self) == 0 or k < 1:
            return []
        d2 = self.squared_distances(probe)
        # one embedding per person (the common case at scale): rows are persons already
        per_person = d2 if len(self.people) == len(d2) else np.minimum.reduceat(d2, self.starts)
        k = min(k, len(per_person))
        if k < len(per_person):
            top = np.argpartition(per_person, k - 1)[:k]
        else:
            top = np.arange(len(per_person))
        top = top[np.argsort(per_person[top], kind="stable")]
        out = []
        for p in top:
            start = int(self.starts[p])
            end = int(self.starts[p + 1]) if p + 1 < len(self.starts) else len(d2)
            row = start + int(np.argmin(d2[start:end]))
            out.append(Candidate(self.people[p], math.sqrt(float(per_person[p])), self.embedding_ids[row]))
        return out

    def distances_to(self, probe: np.ndarray, person_id: str) -> np.ndarray:
        p = self._index.get(person_id)
        if p is None:
            return np.zeros(0, np.float32)
        start = int(self.starts[p])
        end = int(self.starts[p + 1]) if p + 1 < len(self.starts) else len(self)
        out: np.ndarray = np.sqrt(self.squared_distances(probe)[start:end])
        return out


def euclidean(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))
