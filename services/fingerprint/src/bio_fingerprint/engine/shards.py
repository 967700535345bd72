"""Two-stage 1:N search over gallery shards: MCC-LSH prefilter, full match of the selected templates,
candidate lists of all shards merged by score.

A shard is any subset of a gallery (``shard_of`` assigns a template to one of S shards by a stable
hash of its id). ``search_shard`` is what one worker process runs for its shard; ``merge`` combines
the per-shard lists. The full match (``matcher.match_many``) decides the scores, as in exhaustive
search; the prefilter only chooses which templates are matched. ``penetration=1`` is exhaustive.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.indexing import LshParams, McclshIndex, choose_bits, cylinders, hashes

DEFAULT_PENETRATION = 0.05
MIN_CANDIDATES = 200  # small galleries: match at least this many (all of them below it)


def shard_of(template_id: str, shards: int) -> int:
    """Stable shard number of a template id (the same in every process and release)."""
    return zlib.crc32(str(template_id).encode()) % max(1, shards)


@dataclass(frozen=True)
class Hit:
    score: float
    template_id: Hashable


class Shard:
    """Templates of one shard packed for the matcher, with their prefilter index."""

    def __init__(self, ids: Sequence[Hashable], templates: Sequence[np.ndarray], positions: np.ndarray,
                 fields: Sequence[np.ndarray] | None = None) -> None:
        if len(ids) != len(templates):
            raise ValueError("one id per template")
        self.ids = list(ids)
        self.packed: matcher.Packed = matcher.pack(list(templates), fields=None if fields is None else list(fields))
        self.offsets = self.packed[5]
        self.prefilter = McclshIndex(positions)
        self.prefilter.add([hashes(cylinders(t), positions) for t in templates])
        self.prefilter.flush()  # built now: concurrent searches only read it

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.packed) + self.prefilter.nbytes)

    def extended(self, ids: Sequence[Hashable], templates: Sequence[np.ndarray],
                 fields: Sequence[np.ndarray] | None = None) -> Shard:
        """A new shard: this one's templates, then ``templates`` (only those are prepared and hashed).
        This shard is not modified, so searches running on it meanwhile are unaffected."""
        if len(ids) != len(templates):
            raise ValueError("one id per template")
        add = matcher.pack(list(templates), fields=None if fields is None else list(fields))
        new = Shard.__new__(Shard)
        new.ids = [*self.ids, *ids]
        arrays = [np.concatenate([a, b]) for a, b in zip(self.packed[:5], add[:5], strict=True)]
        foff = self.packed[7]
        new.packed = cast(matcher.Packed, (*arrays, np.concatenate([self.offsets, add[5][1:] + self.offsets[-1]]),
                                           np.concatenate([self.packed[6], add[6]]),
                                           np.concatenate([foff, add[7][1:] + foff[-1]])))
        new.offsets = new.packed[5]
        new.prefilter = self.prefilter.copy()
        new.prefilter.add([hashes(cylinders(t), self.prefilter.positions) for t in templates])
        new.prefilter.flush()
        return new

    def candidates(self, probe_hashes: np.ndarray, penetration: float, allowed: np.ndarray | None = None
                   ) -> np.ndarray:
        """Indices to match in full: the prefilter's best ``penetration`` share of the allowed templates
        (``allowed``: a boolean mask, e.g. one finger; None: all), at least MIN_CANDIDATES of them."""
        pool = len(self) if allowed is None else int(np.count_nonzero(allowed))
        count = max(MIN_CANDIDATES, math.ceil(penetration * pool))
        if penetration >= 1 or count >= pool:
            return np.arange(len(self)) if allowed is None else np.flatnonzero(allowed)
        if allowed is None:
            return self.prefilter.select(probe_hashes, count)
        s = np.where(allowed, self.prefilter.scores(probe_hashes), -np.inf)
        top = np.argpartition(-s, count - 1)[:count]
        return top[np.argsort(-s[top], kind="stable")]

    def match(self, probe: matcher.Prepared, selected: np.ndarray) -> np.ndarray:
        """Full matcher scores of the probe against the selected templates (in that order)."""
        if not len(selected):
            return np.zeros(0)
        if len(selected) == len(self):
            pm, pl, pc, po, pk, pf = probe
            return np.asarray(matcher.match_many(pm, pl, pc, po, pk, pf, *self.packed)[selected])
        rows, sub_offsets = _gather(self.offsets, selected)
        gm, gl, gc, go, gk = (np.ascontiguousarray(a[rows]) for a in self.packed[:5])
        cells, sub_foffsets = _gather(self.packed[7], selected)
        gf = np.ascontiguousarray(self.packed[6][cells])
        return np.asarray(matcher.match_many(*probe, gm, gl, gc, go, gk, sub_offsets, gf, sub_foffsets))


def _gather(offsets: np.ndarray, selected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the selected items of arrays packed with ``offsets``, and the offsets of the gathered
    items."""
    lo, hi = offsets[selected], offsets[selected + 1]
    lengths = hi - lo
    sub = np.zeros(len(selected) + 1, np.int64)
    np.cumsum(lengths, out=sub[1:])
    return np.arange(sub[-1], dtype=np.int64) - np.repeat(sub[:-1] - lo, lengths), sub


@dataclass(frozen=True)
class Probe:
    """A probe prepared once for every shard: the matcher's form and the prefilter hashes."""

    prepared: matcher.Prepared
    hashes: np.ndarray

    @classmethod
    def of(cls, minutiae: np.ndarray, positions: np.ndarray, field: np.ndarray | None = None) -> Probe:
        return cls(matcher.prepare(minutiae, field=field), hashes(cylinders(minutiae), positions))


def search_shard(shard: Shard, probe: Probe, *, top_k: int = 10, penetration: float = DEFAULT_PENETRATION,
                 allowed: np.ndarray | None = None, groups: np.ndarray | None = None) -> list[Hit]:
    """The shard's best ``top_k`` templates by full-match score, best first (ties by position).

    ``allowed``: boolean mask of the templates that may be returned (None: all). ``groups``: an integer
    per template (e.g. one per subject and finger); only the best template of each group is returned,
    so ``top_k`` distinct groups come back and a merge over shards still finds the overall best ones."""
    selected = shard.candidates(probe.hashes, penetration, allowed)
    s = shard.match(probe.prepared, selected)
    order = np.lexsort((selected, -s))
    if groups is not None and len(order):
        _, first = np.unique(groups[selected[order]], return_index=True)
        order = order[np.sort(first)]
    return [Hit(float(s[i]), shard.ids[int(selected[i])]) for i in order[:top_k]]


def merge(lists: Sequence[Sequence[Hit]], top_k: int = 10) -> list[Hit]:
    """One candidate list from the shards' lists: by score, ties by id, so the order is deterministic."""
    hits = [h for lst in lists for h in lst]
    return sorted(hits, key=lambda h: (-h.score, str(h.template_id)))[:top_k]


def identify(shards: Sequence[Shard], probe: Probe, *, top_k: int = 10, penetration: float = DEFAULT_PENETRATION,
             run: Callable[[Callable[[Shard], list[Hit]], Sequence[Shard]], list[list[Hit]]] | None = None
             ) -> list[Hit]:
    """Every shard searched (in this process, or through ``run``, e.g. a Celery fan-out) and merged."""

    def one(shard: Shard) -> list[Hit]:
        return search_shard(shard, probe, top_k=top_k, penetration=penetration)

    lists = run(one, shards) if run else [one(s) for s in shards]
    return merge(lists, top_k)


def lsh_positions(sample_templates: Sequence[np.ndarray], params: LshParams | None = None) -> np.ndarray:
    """LSH bit positions chosen on a sample of (real) templates; store them with the gallery."""
    params = params or LshParams()
    cyl = [cylinders(t) for t in sample_templates]
    sample = np.concatenate(cyl) if cyl else np.zeros((0, 1))
    return choose_bits(sample, params)


def split(ids: Sequence[Hashable], templates: Sequence[np.ndarray], shards: int, positions: np.ndarray,
          fields: Sequence[np.ndarray] | None = None) -> list[Shard]:
    """A gallery cut into ``shards`` shards by ``shard_of``."""
    groups: list[list[int]] = [[] for _ in range(shards)]
    for i, tid in enumerate(ids):
        groups[shard_of(str(tid), shards)].append(i)
    return [Shard([ids[i] for i in g], [templates[i] for i in g], positions,
                  None if fields is None else [fields[i] for i in g]) for g in groups]
