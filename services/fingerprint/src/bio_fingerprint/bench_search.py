"""1:N search benchmark of the two-stage sharded search (``bio-fingerprint bench-search --size N``).

Gallery: the first impression of every real finger (FVC2002 DB1_B, DB2_B, pyfnprint; templates
extracted by the service pipeline, cached) plus synthetic templates made from the real ones' minutiae
(``engine/synthetic.py``: new fingers by chimera + mirror + strong warp, each acquired by rotation,
translation, cropping and mild elastic distortion). Probes: the real fingers' other impressions,
whose mates are in the gallery; with ``--probe-keep F`` each probe is re-acquired as a partial print
(``synthetic.impression``: rotated, moved, mildly distorted and cut to a window of about F of its extent in
x and y), so the curve has misses to show (real probes against this gallery are all found at 0.5 %).

Figures: ``hit_rate`` = share of probes whose mate is the two-stage search's rank 1;
``hit_rate_exhaustive`` = the same with every template matched; both from the same full-match scores,
so they differ only by what the prefilter dropped. The penetration curve gives, per penetration rate,
the share of probes whose mate survived the prefilter (retrieval) and the rank-1 hit rate.
Latency is the real two-stage search (prefilter + full match + merge), one process per shard.
"""

from __future__ import annotations

import csv
import math
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np

from bio_fingerprint.engine import synthetic
from bio_fingerprint.engine.indexing import default_positions
from bio_fingerprint.engine.shards import Probe, Shard, lsh_positions, search_shard, split

PENETRATIONS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
SETS = (("fingerprints/fvc2002", "fvc"), ("fingerprints/pyfnprint", "pyfn"))


def real_templates(data_dir: Path, cache: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """(minutiae per image, finger label per image), images in truth.csv order; cached as .npz."""
    if not cache.is_file():
        from bio_fingerprint.engine.pipeline import process
        from bio_shared.images import decode_image

        minutiae, fingers = [], []
        for folder, prefix in SETS:
            with open(data_dir / folder / "truth.csv", newline="") as fh:
                for row in csv.DictReader(fh):
                    img = decode_image((data_dir / folder / row["image"]).read_bytes(), mode="gray").pixels
                    minutiae.append(np.asarray(process(img, enhance_ridges=False).minutiae[:, :5], np.float32))
                    fingers.append(f"{prefix}:{row['finger_id']}")
        cache.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [len(m) for m in minutiae])
        np.savez(cache, minutiae=np.concatenate(minutiae), offsets=offsets, fingers=np.asarray(fingers))
    d = np.load(cache)
    off = d["offsets"]
    return [d["minutiae"][off[i]:off[i + 1]] for i in range(len(off) - 1)], d["fingers"]


def make_gallery(real: list[np.ndarray], fingers: np.ndarray, size: int, seed: int = 0
                 ) -> tuple[list[str], list[np.ndarray], list[np.ndarray], list[str]]:
    """(gallery ids, gallery templates, probe templates, probe mate ids)."""
    rng = np.random.default_rng(seed)
    first: dict[str, int] = {}
    for i, f in enumerate(fingers):
        first.setdefault(str(f), i)
    ids = [f"real-{f}" for f in first]
    templates = [real[i] for i in first.values()]
    probes = [(real[i], f"real-{f}") for i, f in enumerate(fingers) if first[str(f)] != i]
    usable = [i for i, m in enumerate(real) if len(m) >= 12]
    for k in range(size - len(ids)):
        a, b = rng.choice(usable, 2, replace=False)
        ids.append(f"syn-{k:08d}")
        templates.append(synthetic.impression(synthetic.new_finger(real[a], real[b], rng), rng))
    return ids, templates, [p[0] for p in probes], [p[1] for p in probes]


def curve(prefilter_rank: np.ndarray, scores: np.ndarray, mate: int) -> list[tuple[bool, bool]]:
    """Per penetration: (mate retrieved, mate is rank 1 among the retrieved)."""
    out = []
    n = len(scores)
    position = int(np.flatnonzero(prefilter_rank == mate)[0])
    for p in PENETRATIONS:
        count = min(n, max(1, math.ceil(p * n)))
        retrieved = position < count
        chosen = prefilter_rank[:count]
        others = scores[chosen[chosen != mate]]
        out.append((retrieved, retrieved and (len(others) == 0 or scores[mate] > others.max())))
    return out


_SHARDS: list[Shard] = []


def _worker_search(args: tuple[int, Probe, int, float]) -> tuple[tuple[float, float, float], list]:
    """One shard's search in its worker: (wall s, CPU s, prefilter CPU s) and the hits."""
    s, probe, top_k, penetration = args
    t, c = time.perf_counter(), time.thread_time()
    _SHARDS[s].candidates(probe.hashes, penetration)
    pre = time.thread_time() - c
    hits = search_shard(_SHARDS[s], probe, top_k=top_k, penetration=penetration)  # prefilter again + match
    cpu = time.thread_time() - c - pre
    return (time.perf_counter() - t - pre, cpu, pre), hits


def timed_search(shards: list[Shard], probes: list[Probe], penetration: float, top_k: int = 10) -> dict:
    """Wall time per identify with one process per shard (fork), and each shard's own time."""
    global _SHARDS
    _SHARDS = shards
    walls, per_shard = [], []
    for s in range(len(shards)):  # compile (or load) the numba functions before the workers fork
        _worker_search((s, probes[0], top_k, penetration))
    ctx = mp.get_context("fork")
    with ctx.Pool(len(shards)) as pool:
        for probe in probes:
            t = time.perf_counter()
            res = pool.map(_worker_search, [(s, probe, top_k, penetration) for s in range(len(shards))], chunksize=1)
            sorted((h for _, hits in res for h in hits), key=lambda h: -h.score)[:top_k]
            walls.append(time.perf_counter() - t)
            per_shard.append([r[0] for r in res])
    walls_ms, shard_ms = np.asarray(walls) * 1e3, np.asarray(per_shard) * 1e3  # (probes,), (probes, shards, 3)

    def pct(x: np.ndarray, q: float) -> float:
        return round(float(np.percentile(x, q)), 1)

    return {"p50_ms": pct(walls_ms, 50), "p99_ms": pct(walls_ms, 99),
            "shard_p50_ms": pct(shard_ms[..., 0], 50), "shard_p99_ms": pct(shard_ms[..., 0], 99),
            "shard_cpu_p50_ms": pct(shard_ms[..., 1], 50), "shard_cpu_p99_ms": pct(shard_ms[..., 1], 99),
            "shard_prefilter_cpu_p50_ms": pct(shard_ms[..., 2], 50),
            "cpu_p50_ms": pct(shard_ms[..., 1].max(1), 50), "cpu_p99_ms": pct(shard_ms[..., 1].max(1), 99),
            "load_average": round(os.getloadavg()[0], 1)}


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(size: int, data_dir: Path, *, shards: int = 1, penetration: float = 0.05, probes: int = 0,
        timed: int = 40, seed: int = 0, work: Path = Path("/tmp/bio-bench-search"), positions_from: str = "default",
        probe_keep: float = 0.0) -> dict:
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    real, fingers = real_templates(data_dir, work / "fp_real_templates.npz")
    t = time.perf_counter()
    ids, templates, probe_t, mates = make_gallery(real, fingers, size, seed)
    generate_s = time.perf_counter() - t
    rng = np.random.default_rng(seed + 1)
    if probes and probes < len(probe_t):  # a fixed random subset for the exhaustive reference
        keep = np.sort(rng.choice(len(probe_t), probes, replace=False))
        probe_t, mates = [probe_t[i] for i in keep], [mates[i] for i in keep]
    if probe_keep:
        probe_t = [synthetic.impression(p, rng, keep=(probe_keep, probe_keep)) for p in probe_t]
    rss0 = _rss()
    t = time.perf_counter()
    # "default": the service's positions (every bit inside the cylinder radius eligible); "sample": chosen
    # on the bit frequencies of the real templates' cylinders (unsupervised)
    positions = default_positions() if positions_from == "default" else lsh_positions(real)
    parts = split(ids, templates, shards, positions)
    build_s = time.perf_counter() - t
    memory = _rss() - rss0
    del templates
    prepared = [Probe.of(p, positions) for p in probe_t]
    timing = timed_search(parts, prepared[:timed], penetration)
    # accuracy: exhaustive scores and the prefilter ranking of every probe, gathered over the shards
    whole = [(s, k) for s, part in enumerate(parts) for k in range(len(part))]
    where = {parts[s].ids[k]: i for i, (s, k) in enumerate(whole)}
    points, exhaustive, operating = [], [], []
    is_real = np.asarray([str(parts[s].ids[k]).startswith("real-") for s, k in whole])
    imp_real, imp_syn = [], []
    for probe, mate_id in zip(prepared, mates, strict=True):
        scores = np.concatenate([p.match(probe.prepared, np.arange(len(p))) for p in parts])
        votes = np.concatenate([p.prefilter.scores(probe.hashes) for p in parts])
        rank = np.argsort(-votes, kind="stable")
        mate = where[mate_id]
        exhaustive.append(bool(scores[mate] > np.delete(scores, mate).max()))
        others = np.ones(len(scores), bool)
        others[mate] = False
        imp_real.append(scores[others & is_real])
        syn = scores[others & ~is_real]
        imp_syn.append(rng.choice(syn, min(len(syn), 2000), replace=False) if len(syn) else syn)
        points.append(curve(rank, scores, mate))
        hits = [search_shard(p, probe, top_k=1, penetration=penetration) for p in parts]
        best = max((h[0] for h in hits if h), key=lambda h: h.score)
        operating.append(best.template_id == mate_id)
    pts = np.asarray(points)  # (probes, penetrations, 2)
    tuning = np.asarray(["FVC2002_DB1_B" in m for m in mates])  # the LSH parameters were chosen on these
    by_set = {name: {"probes": int(sel.sum()), "hit_rate": round(float(np.mean(np.asarray(operating)[sel])), 4),
                     "hit_rate_exhaustive": round(float(np.mean(np.asarray(exhaustive)[sel])), 4)}
              for name, sel in (("tuning_fvc2002_db1", tuning), ("held_out_db2_pyfnprint", ~tuning)) if sel.any()}
    impostors = {name: {f"p{q}": round(float(np.percentile(np.concatenate(v), q)), 2) for q in (50, 99, 99.9)}
                 for name, v in (("real", imp_real), ("synthetic", imp_syn))}
    return {"size": size, "shards": shards, "penetration": penetration, "positions": positions_from,
            "probe_keep": probe_keep or None,
            "lsh": {"functions": int(positions.shape[0]), "bits": int(positions.shape[1])}, **timing,
            "hit_rate": round(float(np.mean(operating)), 4), "hit_rate_exhaustive": round(float(np.mean(exhaustive)), 4),
            "probes": len(prepared), "timed_probes": len(prepared[:timed]),
            "probe_minutiae_mean": round(float(np.mean([len(p) for p in probe_t])), 2) if probe_t else 0.0,
            "memory_bytes": sum(p.nbytes for p in parts), "rss_growth_build": memory, "build_s": round(build_s, 1),
            "generate_s": round(generate_s, 1), "shard_sizes": [len(p) for p in parts],
            "curve": [{"penetration": p, "retrieval": round(float(pts[:, i, 0].mean()), 4),
                       "hit_rate": round(float(pts[:, i, 1].mean()), 4)} for i, p in enumerate(PENETRATIONS)],
            "by_set": by_set, "impostor_scores": impostors,
            "projection_1m_8_shards": projection(timing, [len(p) for p in parts])}


def projection(timing: dict, sizes: list[int], size: int = 1_000_000, shards: int = 8) -> dict:
    """1,000,000 templates over 8 shards, projected (not measured): each shard holds 125,000 templates and
    its search time grows linearly with its size (prefilter votes and the matched share both do); the
    shards run in parallel, one core each, so identify takes about the slowest shard plus the merge."""
    per_shard = size / shards
    scale = per_shard / float(np.mean(sizes))
    return {"projected": True, "size": size, "shards": shards, "templates_per_shard": int(per_shard),
            "from_shard_size": int(np.mean(sizes)), "shard_p50_ms": round(timing["shard_p50_ms"] * scale, 1),
            "shard_p99_ms": round(timing["shard_p99_ms"] * scale, 1),
            "merge_and_fan_out_ms": round(max(0.0, timing["p50_ms"] - timing["shard_p50_ms"]), 1),
            "p50_ms": round(timing["shard_p50_ms"] * scale + max(0.0, timing["p50_ms"] - timing["shard_p50_ms"]), 1)}


def _cli(args, settings) -> None:
    import json

    data_dir = Path(os.environ.get("BIOMETRICS_DATA_DIR") or getattr(settings, "data_dir", None) or "../shared/data")
    report = run(args.size, data_dir, shards=args.shards, penetration=args.penetration, probes=args.probes,
                 timed=args.timed, work=Path(args.work), positions_from=args.positions,
                 probe_keep=args.probe_keep)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)


def add_parser(sub) -> None:
    """``bench-search``: registered by cli.py (kept here so cli.py stays argument wiring only)."""
    p = sub.add_parser("bench-search", help="1:N two-stage sharded search vs exhaustive (synthetic gallery)")
    p.add_argument("--size", type=int, required=True, help="gallery templates")
    p.add_argument("--shards", type=int, default=1, help="shards, one worker process each")
    p.add_argument("--penetration", type=float, default=0.05, help="share of each shard matched in full")
    p.add_argument("--probes", type=int, default=0, help="real probes for the accuracy figures (0: all)")
    p.add_argument("--timed", type=int, default=40, help="probes timed through the sharded search")
    p.add_argument("--work", default="/tmp/bio-bench-search", help="cache folder (extracted real templates)")
    p.add_argument("--positions", choices=["default", "sample"], default="default",
                   help="LSH bit positions: the service's default ones, or chosen on the real templates")
    p.add_argument("--probe-keep", type=float, default=0.0,
                   help="re-acquire each probe as a partial print of about this share of its extent (0: as is)")
    p.add_argument("--json", help="write the report here")
    p.set_defaults(handler=_cli)
