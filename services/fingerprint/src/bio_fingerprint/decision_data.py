"""Real prints for the decision benchmark: templates of each set (extracted once, cached) and the full
probe x template score matrix of a set, the way /verify and /identify score (probe first).

Besides the full impressions, the small and tiny crops of bench.py (engine/devsets.py) are populations of
their own: smaller prints have a heavier impostor tail at the same score (fewer minutiae in the common
area), so a table fitted on full impressions alone understates the rate a small-area sensor gets. The crops
of the tuning seeds (bench.TUNING_SEEDS) are fitted on; those of the hold-out seeds only check."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.evaluation import read_truth

SETS = ("DB1_B", "DB2_B", "pyfnprint")
CROP_KINDS = ("small", "tiny")


@dataclass
class PrintSet:
    name: str
    fingers: list[str]  # finger id of every print, in truth.csv order
    templates: list[np.ndarray]
    fields: list[np.ndarray]  # each template's orientation field (engine/orientation_field.py)

    def by_finger(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, f in enumerate(self.fingers):
            out.setdefault(f, []).append(i)
        return out

    def score_matrix(self) -> np.ndarray:
        """S[i, j] = score(probe i, template j) for every ordered pair (the diagonal is left NaN)."""
        n = len(self.templates)
        pairs = [(i, j) for i in range(n) for j in range(n) if i != j]
        scores = matcher.score_pairs(matcher.pack(self.templates, fields=self.fields), pairs)
        s = np.full((n, n), np.nan)
        idx = np.asarray(pairs)
        s[idx[:, 0], idx[:, 1]] = scores
        return s


def _rows(base: Path, name: str) -> list[tuple[Path, str]]:
    if name == "pyfnprint":
        return read_truth(base / "pyfnprint")
    return [(p, f) for p, f in read_truth(base / "fvc2002") if p.parent.name == name]


def _extract(rows: list[tuple[Path, str]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    from bio_fingerprint.engine.enhance import EnhanceMethods
    from bio_fingerprint.engine.pipeline import process
    from bio_shared.images import decode_image

    methods = EnhanceMethods.preset("classic")
    minutiae, fields = [], []
    for path, _ in rows:
        gray = decode_image(path.read_bytes(), mode="gray", max_bytes=1 << 30).pixels
        r = process(gray, None, methods, 500, "leader", False)  # the probe path of /verify
        minutiae.append(r.minutiae)
        fields.append(r.orientation)
    return minutiae, fields


def load_set(base: Path, name: str, cache_dir: Path | None) -> PrintSet | None:
    return _load(name, _rows(base, name), cache_dir)


def load_crops(base: Path, work: Path, family: str, kind: str, seed: int, cache_dir: Path | None) -> PrintSet | None:
    """The ``kind`` crops of a family's prints with ``seed`` (bench.py's development set, written to ``work``
    once)."""
    from bio_fingerprint.bench import DEV_SETS, set_folder

    if not _rows(base, family):
        return None
    dev = next(d for d in DEV_SETS if d.source == family and d.kind == kind and d.seed == seed)
    return _load(dev.name, read_truth(set_folder(base, work, dev)), cache_dir)


def _load(name: str, rows: list[tuple[Path, str]], cache_dir: Path | None) -> PrintSet | None:
    if not rows:
        return None
    fingers = [f for _, f in rows]
    cache = None
    if cache_dir is not None:
        from bio_fingerprint.engine.enhance import LEADER_THRESHOLD
        from bio_fingerprint.engine.template import ALGORITHM_VERSION

        # the extractor's version and threshold are part of the key: a changed extractor never reads old
        # templates (one version's threshold could still be changed while trying settings)
        ident = "|".join([ALGORITHM_VERSION, "leader", f"{LEADER_THRESHOLD:g}", *(str(p) for p, _ in rows)])
        key = hashlib.sha256(ident.encode()).hexdigest()[:12]
        cache = cache_dir / f"templates_{name}_{key}.npz"
        if cache.is_file():
            stored = np.load(cache)
            return PrintSet(name, fingers, [stored[f"t{i}"] for i in range(len(rows))],
                            [stored[f"f{i}"] for i in range(len(rows))])
    templates, fields = _extract(rows)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {f"t{i}": t for i, t in enumerate(templates)}
        arrays.update({f"f{i}": f for i, f in enumerate(fields)})
        np.savez(cache, **arrays)
    return PrintSet(name, fingers, templates, fields)
