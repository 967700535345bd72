"""1:N search benchmark of the approximate index (``bio-face-recognition bench-search --size N``).

Gallery: the real dlib embeddings of the sample faces (one enrolled image per identity, the identity's
other images are the real probes) plus generated embeddings with the same statistics: a Gaussian with
the real vectors' per-dimension mean and covariance (Ledoit-Wolf shrunk, 42 vectors cannot fill a
128 x 128 covariance), each rescaled to a norm drawn from the real norms. Synthetic mated probes are
gallery rows plus within-identity noise with the covariance of the real vectors around their
identity's mean; non-mated probes are fresh draws. Ground truth is exhaustive float32 search.

``nprobe`` is chosen on a tuning set of synthetic mates drawn as far from their gallery entry as the
decision threshold (0.6; harder than real mates, median 0.35); every reported figure comes from other,
disjoint probes (synthetic mates at the real mates' distance, the real probes, non-mated draws). The query phase runs in a fresh process (cold load from the blob store, one
thread), so ``memory_bytes`` is that process's resident-set growth from loading and searching, not
the build's.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bio_face_recognition.engine.ann_index import AnnIndex, AnnSettings
from bio_shared.storage import BlobStore

CHUNK = 100_000
TUNE_DISTANCE = 0.6  # dlib's decision threshold: every mate the service would accept must be found
NPROBES = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384)


def real_embeddings(data_dir: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """dlib embeddings of every truth.csv image under faces/ (largest face), cached as .npz."""
    if cache.is_file():
        d = np.load(cache)
        return d["vectors"], d["identities"]
    from bio_face_recognition.engine.pipeline import FacePipeline
    from bio_shared.images import decode_image

    pipeline, vecs, names = FacePipeline(), [], []
    for truth in sorted((data_dir / "faces").glob("*/truth.csv")):
        with open(truth, newline="") as fh:
            for row in csv.DictReader(fh):
                faces = pipeline.analyze(decode_image((truth.parent / row["image"]).read_bytes()).pixels, max_faces=1)
                if faces:
                    vecs.append(faces[0].embedding)
                    names.append(f"{truth.parent.name}:{row['identity']}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, vectors=np.asarray(vecs, np.float32), identities=np.asarray(names))
    return np.asarray(vecs, np.float32), np.asarray(names)


def ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Shrunk covariance (Ledoit & Wolf 2004, towards a scaled identity)."""
    x = x - x.mean(0)
    n, d = x.shape
    s = x.T @ x / n
    mu = np.trace(s) / d
    delta = np.sum((s - mu * np.eye(d)) ** 2)
    beta = min(delta, sum(np.sum((np.outer(r, r) - s) ** 2) for r in x) / n**2)
    a = beta / delta if delta > 0 else 1.0
    return a * mu * np.eye(d) + (1 - a) * s


class Generator:
    """Embeddings with the real ones' statistics (see module doc)."""

    def __init__(self, vectors: np.ndarray, identities: np.ndarray) -> None:
        self.mean = vectors.mean(0)
        self.chol = np.linalg.cholesky(ledoit_wolf(vectors))
        centred = np.concatenate([vectors[identities == i] - vectors[identities == i].mean(0)
                                  for i in np.unique(identities) if (identities == i).sum() > 1])
        # a deviation from the identity's mean: scale by n/(n-1) is small; use the raw spread
        self.within = np.linalg.cholesky(ledoit_wolf(centred) + 1e-9 * np.eye(vectors.shape[1]))
        norms = np.linalg.norm(vectors, axis=1)
        self.norm_mean, self.norm_std = float(norms.mean()), float(norms.std())
        # scale the noise so synthetic mates are as far from their gallery entry as real mates are
        pairs = [np.linalg.norm(vectors[a] - vectors[b]) for a in range(len(vectors)) for b in range(a)
                 if identities[a] == identities[b] and np.linalg.norm(vectors[a] - vectors[b]) > 1e-6]
        rng = np.random.default_rng(0)
        x = self.people(2000, rng)
        self.real_mate_median = float(np.median(pairs))
        self.within *= self.real_mate_median / float(np.median(np.linalg.norm(self.mates(x, rng) - x, axis=1)))

    def _renorm(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = rng.normal(self.norm_mean, self.norm_std, len(x))
        return (x * (target / np.linalg.norm(x, axis=1))[:, None]).astype(np.float32)

    def people(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._renorm(self.mean + rng.standard_normal((n, len(self.mean))) @ self.chol.T, rng)

    def mates(self, x: np.ndarray, rng: np.random.Generator, spread: float | np.ndarray = 1.0) -> np.ndarray:
        return self._renorm(x + spread * rng.standard_normal(x.shape) @ self.within.T, rng)


def _exact_top1(best: np.ndarray, arg: np.ndarray, probes: np.ndarray, chunk: np.ndarray, offset: int) -> None:
    d2 = (chunk * chunk).sum(1)[None, :] - 2.0 * probes @ chunk.T + (probes * probes).sum(1)[:, None]
    j = d2.argmin(1)
    v = d2[np.arange(len(probes)), j]
    better = v < best
    best[better], arg[better] = v[better], j[better] + offset


def build(size: int, folder: Path, data_dir: Path, seed: int = 0, probes_per_set: int = 1000) -> dict:
    vectors, identities = real_embeddings(data_dir, folder.parent / "real_faces.npz")
    gen = Generator(vectors, identities)
    rng = np.random.default_rng(seed)
    first = {i: int(np.flatnonzero(identities == i)[0]) for i in np.unique(identities)}
    real_rows = sorted(first.values())
    real_probes = np.asarray([k for k in range(len(vectors)) if k not in set(real_rows)])
    n_real = len(real_rows)
    mated_rows = np.sort(rng.choice(np.arange(n_real, size), 2 * probes_per_set, replace=False))
    probes = {"real": vectors[real_probes], "nonmated": gen.people(2 * probes_per_set // 4, rng)}
    mated = np.zeros((len(mated_rows), vectors.shape[1]), np.float32)
    settings = AnnSettings(exact_below=size + 1)  # bulk load flat, train once on everything at the end
    index = AnnIndex(BlobStore(folder), "gallery", settings)
    gen_s = 0.0
    t0 = time.perf_counter()
    chunks = []
    for start in range(0, size, CHUNK):
        t = time.perf_counter()
        crng = np.random.default_rng([seed, start])
        stop = min(size, start + CHUNK)
        chunk = gen.people(stop - start, crng)
        if start == 0:
            chunk[:n_real] = vectors[real_rows]
        inside = (mated_rows >= start) & (mated_rows < stop)
        # even probes tune nprobe: mates as far as the decision threshold; odd ones are real-like
        spread = np.where(np.flatnonzero(inside) % 2 == 0, TUNE_DISTANCE / gen.real_mate_median, 1.0)[:, None]
        mated[inside] = gen.mates(chunk[mated_rows[inside] - start], crng, spread)
        gen_s += time.perf_counter() - t
        ids = [f"{r:032x}" for r in range(start, stop)]
        index.add(ids, ids, chunk)
        chunks.append((start, stop))
    if size >= 20_000:
        index.retrain()
    index.save(version=1)
    build_s = time.perf_counter() - t0 - gen_s
    probes["mated"] = mated
    truth = exact_truth(index, probes)
    arrays: dict[str, Any] = {**{f"q_{k}": v for k, v in probes.items()}, **{f"t_{k}": v for k, v in truth.items()}}
    np.savez(folder / "probes.npz", **arrays)
    return {"build_s": round(build_s, 2), "generate_s": round(gen_s, 2), "real_gallery": n_real,
            "mate_distance_median": {"real": round(gen.real_mate_median, 3), "synthetic": round(float(np.median(
                np.linalg.norm(mated - index.vectors.read(mated_rows), axis=1)[1::2])), 3),
                "tuning": round(float(np.median(np.linalg.norm(mated - index.vectors.read(mated_rows), axis=1)[::2])), 3)},
            "real_probes": len(real_probes), "index_nbytes": index.nbytes, "approximate": index.approximate,
            "nlist": int(getattr(index.index, "nlist", 0)), "build_peak_rss_bytes": _status()["VmHWM"]}


def exact_truth(index: AnnIndex, probes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Exhaustive float32 nearest row of every probe, reading the stored vectors chunk-wise."""
    allq = np.concatenate(list(probes.values())).astype(np.float32)
    best, arg = np.full(len(allq), np.inf), np.zeros(len(allq), np.int64)
    step = 20_000  # (probes x step) distance blocks stay small
    for start in range(0, index.vectors.rows, step):
        rows = np.arange(start, min(index.vectors.rows, start + step))
        _exact_top1(best, arg, allq, index.vectors.read(rows), start)
    out, at = {}, 0
    for k, v in probes.items():
        out[k] = arg[at:at + len(v)]
        at += len(v)
    return out


def _status() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0]) * 1024
    return out


def _timed(index: AnnIndex, q: np.ndarray, cpu: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Wall time per search (and, into ``cpu``, this thread's CPU time: the wall time less preemption
    by other processes on a shared machine)."""
    times, rows = np.zeros(len(q)), np.zeros(len(q), np.int64)
    for i, v in enumerate(q):
        c, t = time.thread_time(), time.perf_counter()
        hit = index.search(v, k=1)
        times[i] = time.perf_counter() - t
        if cpu is not None:
            cpu.append(time.thread_time() - c)
        rows[i] = int(hit[0].embedding_id, 16)
    return times, rows


def query_phase(folder: Path, nprobe: int | None) -> dict:
    """Runs in a fresh process: cold load, nprobe tuning on the first half of the probes, figures on the rest."""
    import faiss

    faiss.omp_set_num_threads(1)
    with np.load(folder / "probes.npz") as z:
        d = {k: z[k] for k in z.files}
    before = _status()
    t = time.perf_counter()
    index = AnnIndex.load(BlobStore(folder), "gallery", 1)
    load_s = time.perf_counter() - t
    tune = {"mated": (d["q_mated"][::2], d["t_mated"][::2])}
    held = {"mated": (d["q_mated"][1::2], d["t_mated"][1::2]), "nonmated": (d["q_nonmated"], d["t_nonmated"])}
    held["real"] = (d["q_real"], d["t_real"])
    curve = {}
    if nprobe is None and index.approximate:
        for n in NPROBES:  # the smallest nprobe with every tuning probe's exact nearest found
            index.settings = AnnSettings(nprobe=n)
            q, truth = tune["mated"]
            curve[n] = float(np.mean(_timed(index, q)[1] == truth))
            if curve[n] >= 1.0:
                break
        nprobe = n
    index.settings = AnnSettings(nprobe=nprobe)
    out: dict = {"load_s": round(load_s, 3), "nprobe": nprobe, "tuning_recall": curve}
    all_times: list[np.ndarray] = []
    hits: list[Any] = []
    cpu: list[float] = []
    for k, (q, truth) in held.items():
        times, rows = _timed(index, q, cpu if k != "nonmated" else None)
        if k != "nonmated":
            all_times.append(times)
            hits.append(rows == truth)
        out[f"recall_at_1_{k}"] = round(float(np.mean(rows == truth)), 5)
        out[f"probes_{k}"] = len(q)
    times = np.concatenate(all_times) * 1e3
    after = _status()
    out.update(p50_ms=round(float(np.percentile(times, 50)), 3), p99_ms=round(float(np.percentile(times, 99)), 3),
               cpu_p50_ms=round(float(np.percentile(cpu, 50)) * 1e3, 3),
               cpu_p99_ms=round(float(np.percentile(cpu, 99)) * 1e3, 3), load_average=os.getloadavg()[0],
               recall_at_1=round(float(np.mean(np.concatenate(hits))), 5),
               memory_bytes=after["VmRSS"] - before["VmRSS"], rss_anon_growth=after["RssAnon"] - before["RssAnon"],
               rss_file_growth=after["RssFile"] - before["RssFile"], rss_total=after["VmRSS"],
               rss_baseline=before["VmRSS"])
    return out


def run(size: int, work: Path, data_dir: Path, nprobe: int | None = None, probes: int = 1000) -> dict:
    folder = work / f"faces-{size}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    report = {"size": size, **build(size, folder, data_dir, probes_per_set=probes)}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "bio_face_recognition.bench_search", str(folder), str(nprobe or 0)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    report.update(json.loads(res.stdout.strip().splitlines()[-1]))
    report["memory_bytes_per_embedding"] = round(report["memory_bytes"] / size, 1)
    report["disk_bytes"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(folder)  # up to gigabytes of segments
    return report


if __name__ == "__main__":  # the query phase, in its own process (see run)
    print(json.dumps(query_phase(Path(sys.argv[1]), int(sys.argv[2]) or None)))
