"""1:N search benchmark of the approximate index (``bio-face-recognition bench-search --size N``), on the
service's production path: the embeddings are rows of the service's own ``face_embeddings`` table in a
SQLite database (the ``vector`` column sealed with a bench key, as at rest in the service), the index is
built from that table by the service's build (``service.ann``), persisted through the sealed blob store,
cold-loaded in a fresh process, and every probe goes through the service's ``AnnView`` (faiss candidates,
their vectors fetched by id from the database and opened, exact re-ranking).

Gallery: the real dlib embeddings of the sample faces (one enrolled image per identity, the identity's
other images are the real probes) plus generated embeddings with the same statistics: a Gaussian with
the real vectors' per-dimension mean and covariance (Ledoit-Wolf shrunk, 42 vectors cannot fill a
128 x 128 covariance), each rescaled to a norm drawn from the real norms. Synthetic mated probes are
gallery rows plus within-identity noise with the covariance of the real vectors around their
identity's mean; non-mated probes are fresh draws. Ground truth is exhaustive float32 search.

``nprobe`` is chosen on a tuning set of synthetic mates drawn as far from their gallery entry as the
decision threshold (0.6; harder than real mates, median 0.35); every reported figure comes from other,
disjoint probes (synthetic mates at the real mates' distance, the real probes, non-mated draws). The
query phase runs in a fresh process (cold load from the blob store, one thread), so ``memory_bytes`` is
that process's resident-set growth from loading and searching (the database's page cache is the
kernel's, as in the service), not the build's. Run it with OMP_NUM_THREADS=1 for one-core build figures.
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
from sqlalchemy import insert

from bio_face_recognition.engine.ann_index import AnnIndex, AnnSettings
from bio_face_recognition.models import Base, FaceEmbedding, FaceEvent, Person
from bio_face_recognition.service import ann
from bio_face_recognition.service.galleries import AnnEntry, AnnView
from bio_shared import crypto
from bio_shared.db import session_factory, session_scope
from bio_shared.storage import BlobStore

CHUNK = 100_000
OWNER, EVENT, MODEL = "bench", "b" * 32, ("bench-embeddings", "1")
PREFIX = ann.index_prefix(OWNER, EVENT, MODEL)
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


def _open(folder: Path) -> tuple[Any, BlobStore]:
    """The bench's database and sealed blob store (its own key, written next to them)."""
    crypto.configure(*crypto.load_key_file(folder / "kek.json"))
    return session_factory(f"sqlite:///{folder / 'faces.db'}"), BlobStore(folder / "blobs", crypto.ENVELOPE)


class SyntheticGallery:
    """The generated gallery, chunk by chunk and reproducibly (the truth pass regenerates it)."""

    def __init__(self, size: int, gen: Generator, real: np.ndarray, seed: int) -> None:
        self.size, self.gen, self.real, self.seed = size, gen, real, seed

    def chunks(self) -> Any:
        for start in range(0, self.size, CHUNK):
            crng = np.random.default_rng([self.seed, start])
            chunk = self.gen.people(min(self.size, start + CHUNK) - start, crng)
            if start == 0:
                chunk[:len(self.real)] = self.real
            yield start, chunk, crng


def _insert(sessions: Any, ids: list[str], chunk: np.ndarray) -> None:
    people = [{"id": i, "owner_id": OWNER, "event_id": EVENT, "name": i} for i in ids]
    rows = [{"id": i, "owner_id": OWNER, "event_id": EVENT, "person_id": i, "vector": v.astype("<f4").tobytes(),
             "model": MODEL[0], "model_version": MODEL[1]} for i, v in zip(ids, chunk, strict=True)]
    with session_scope(sessions) as s:
        s.execute(insert(Person), people)
        s.execute(insert(FaceEmbedding), rows)  # the column type seals every vector


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
    mates_of = np.zeros_like(mated)  # their gallery rows
    ids = np.asarray([rng.bytes(16).hex() for _ in range(size)], "S32")  # uuid4-like, as the service's
    key = os.urandom(32)
    kek = crypto.LocalKek(crypto.kek_id_for(key), key)
    crypto.write_key_file(folder / "kek.json", [kek], kek.key_id)
    sessions, store = _open(folder)
    Base.metadata.create_all(sessions.kw["bind"])
    with session_scope(sessions) as s:
        s.add(FaceEvent(id=EVENT, owner_id=OWNER, name="bench", threshold=0.6, detector="hog", landmarks=5, top_k=5,
                        keep_images=False, unknown_retention_s=0, refuse_duplicates=False, version=1))
    gallery, gen_s, t0 = SyntheticGallery(size, gen, vectors[real_rows], seed), 0.0, time.perf_counter()
    for start, chunk, crng in gallery.chunks():
        t = time.perf_counter()
        inside = (mated_rows >= start) & (mated_rows < start + len(chunk))
        # even probes tune nprobe: mates as far as the decision threshold; odd ones are real-like
        spread = np.where(np.flatnonzero(inside) % 2 == 0, TUNE_DISTANCE / gen.real_mate_median, 1.0)[:, None]
        mates_of[inside] = chunk[mated_rows[inside] - start]
        mated[inside] = gen.mates(mates_of[inside], crng, spread)
        gen_s += time.perf_counter() - t
        _insert(sessions, [i.decode() for i in ids[start:start + len(chunk)]], chunk)
    insert_s = time.perf_counter() - t0 - gen_s
    settings = AnnSettings()
    t = time.perf_counter()
    with sessions() as s:
        index = ann.build(s, EVENT, MODEL, 1, settings)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    index.save(store, PREFIX)
    save_s = time.perf_counter() - t
    probes["mated"] = mated
    truth = exact_truth(gallery, probes)
    mate_d = np.linalg.norm(mated - mates_of, axis=1)
    arrays: dict[str, Any] = {**{f"q_{k}": v for k, v in probes.items()}, **{f"t_{k}": ids[v] for k, v in truth.items()}}
    np.savez(folder / "probes.npz", **arrays)
    return {"build_s": round(build_s, 2), "save_s": round(save_s, 2), "insert_s": round(insert_s, 2),
            "generate_s": round(gen_s, 2), "real_gallery": n_real,
            "mate_distance_median": {"real": round(gen.real_mate_median, 3),
                                     "synthetic": round(float(np.median(mate_d[1::2])), 3),
                                     "tuning": round(float(np.median(mate_d[::2])), 3)},
            "real_probes": len(real_probes), "index_nbytes": index.nbytes, "approximate": index.approximate,
            "nlist": int(getattr(index.index, "nlist", 0)), "build_peak_rss_bytes": _status()["VmHWM"],
            "db_bytes": sum(p.stat().st_size for p in folder.glob("faces.db*")),
            "index_blob_bytes": sum(p.stat().st_size for p in (folder / "blobs").rglob("*") if p.is_file())}


def exact_truth(gallery: SyntheticGallery, probes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Exhaustive float32 nearest row of every probe, over the regenerated gallery chunk by chunk."""
    allq = np.concatenate(list(probes.values())).astype(np.float32)
    best, arg = np.full(len(allq), np.inf), np.zeros(len(allq), np.int64)
    for start, chunk, _ in gallery.chunks():
        for at in range(0, len(chunk), 20_000):  # (probes x 20,000) distance blocks stay small
            _exact_top1(best, arg, allq, chunk[at:at + 20_000], start + at)
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


class TimedSource:
    """The service's database source, its fetch time recorded (the re-ranking's share of a search)."""

    def __init__(self, source: ann.DbVectors) -> None:
        self.source, self.times = source, list[float]()

    def fetch(self, ids: list[str]) -> tuple[list[str], list[str], np.ndarray]:
        t = time.perf_counter()
        out = self.source.fetch(ids)
        self.times.append(time.perf_counter() - t)
        return out


def _timed(view: AnnView, q: np.ndarray, cpu: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Wall time per search (and, into ``cpu``, this thread's CPU time: the wall time less preemption
    by other processes on a shared machine)."""
    times, hits = np.zeros(len(q)), np.zeros(len(q), "S32")
    for i, v in enumerate(q):
        c, t = time.thread_time(), time.perf_counter()
        hit = view.search(v, k=1)
        times[i] = time.perf_counter() - t
        if cpu is not None:
            cpu.append(time.thread_time() - c)
        hits[i] = hit[0].embedding_id.encode()
    return times, hits


def _ms(x: Any, q: float) -> float:
    return round(float(np.percentile(x, q)) * 1e3, 3)


def query_phase(folder: Path, nprobe: int | None) -> dict:
    """Runs in a fresh process: cold load, nprobe tuning on the first half of the probes, figures on the rest."""
    import faiss

    faiss.omp_set_num_threads(1)
    with np.load(folder / "probes.npz") as z:
        d = {k: z[k] for k in z.files}
    sessions, store = _open(folder)
    s = sessions()
    ann.DbVectors(s, EVENT, MODEL).fetch([])  # connection and statement set-up before the baseline
    before = _status()
    t = time.perf_counter()
    index = AnnIndex.load(store, PREFIX)
    load_s = time.perf_counter() - t
    view = AnnView(AnnEntry(index, MODEL, PREFIX), s, EVENT)
    tune = {"mated": (d["q_mated"][::2], d["t_mated"][::2])}
    held = {"mated": (d["q_mated"][1::2], d["t_mated"][1::2]), "nonmated": (d["q_nonmated"], d["t_nonmated"])}
    held["real"] = (d["q_real"], d["t_real"])
    curve = {}
    if nprobe is None and index.approximate:
        for n in NPROBES:  # the smallest nprobe with every tuning probe's exact nearest found
            index.settings = AnnSettings(nprobe=n)
            q, truth = tune["mated"]
            curve[n] = float(np.mean(_timed(view, q)[1] == truth))
            if curve[n] >= 1.0:
                break
        nprobe = n
    index.settings = AnnSettings(nprobe=nprobe)
    view.source = timed = TimedSource(view.source)  # type: ignore[assignment]
    out: dict = {"load_s": round(load_s, 3), "nprobe": nprobe, "tuning_recall": curve}
    all_times: list[np.ndarray] = []
    hits: list[Any] = []
    cpu: list[float] = []
    for k, (q, truth) in held.items():
        times, got = _timed(view, q, cpu if k != "nonmated" else None)
        if k != "nonmated":
            all_times.append(times)
            hits.append(got == truth)
        out[f"recall_at_1_{k}"] = round(float(np.mean(got == truth)), 5)
        out[f"probes_{k}"] = len(q)
    times = np.concatenate(all_times)
    after = _status()
    out.update(p50_ms=_ms(times, 50), p99_ms=_ms(times, 99), cpu_p50_ms=_ms(cpu, 50), cpu_p99_ms=_ms(cpu, 99),
               rerank_fetch_p50_ms=_ms(timed.times, 50), rerank_fetch_p99_ms=_ms(timed.times, 99),
               load_average=os.getloadavg()[0], recall_at_1=round(float(np.mean(np.concatenate(hits))), 5),
               memory_bytes=after["VmRSS"] - before["VmRSS"], rss_anon_growth=after["RssAnon"] - before["RssAnon"],
               rss_file_growth=after["RssFile"] - before["RssFile"], rss_total=after["VmRSS"],
               rss_baseline=before["VmRSS"])
    # what a replica pays once per version change it did not make: the id diff against the table
    t = time.perf_counter()
    ann.catch_up(s, index, EVENT, MODEL, 2)
    out["catch_up_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    ann.people(s, EVENT, MODEL)
    out["people_count_s"] = round(time.perf_counter() - t, 3)
    s.close()
    return out


def run(size: int, work: Path, data_dir: Path, nprobe: int | None = None, probes: int = 1000,
        repeat: int = 1) -> dict:
    """Build once, then the query phase ``repeat`` times, each in a fresh process (cold load each time; the
    nprobe tuned by the first run is kept). The headline p50/p99 are the medians over the runs."""
    folder = work / f"faces-{size}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    report = {"size": size, **build(size, folder, data_dir, probes_per_set=probes)}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    runs: list[dict] = []
    for _ in range(max(1, repeat)):
        tuned = runs[0]["nprobe"] if runs else nprobe
        cmd = [sys.executable, "-m", "bio_face_recognition.bench_search", str(folder), str(tuned or 0)]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    report.update(runs[0])
    if len(runs) > 1:
        keys = ("p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms", "rerank_fetch_p50_ms", "load_s", "recall_at_1",
                "memory_bytes", "catch_up_s", "load_average")
        report["runs"] = [{k: r[k] for k in keys} for r in runs]
        for k in ("p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms", "load_s", "memory_bytes", "catch_up_s"):
            report[k] = round(float(np.median([r[k] for r in runs])), 3)
        report["recall_at_1"] = min(r["recall_at_1"] for r in runs)
    report["memory_bytes_per_embedding"] = round(report["memory_bytes"] / size, 1)
    report["omp_threads_build"] = os.environ.get("OMP_NUM_THREADS", "default")
    shutil.rmtree(folder)  # up to gigabytes of database and blobs
    return report


if __name__ == "__main__":  # the query phase, in its own process (see run)
    print(json.dumps(query_phase(Path(sys.argv[1]), int(sys.argv[2]) or None)))
