"""``bio-face-recognition bench``: accuracy on the sample faces, speed on one core, 1:N search at scale.

Writes ``<out>.md`` and ``<out>.json``. Never fails on a time: targets are reported next to the numbers.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bio_face_recognition.engine.gallery import Gallery
from bio_face_recognition.engine.models import load_models
from bio_face_recognition.engine.pipeline import FacePipeline, plain_dlib_faces
from bio_face_recognition.evaluation import evaluate

SCALES = (100, 10_000, 100_000)
TARGET_SEARCH_MS = 20.0
TARGET_IDENTIFY_MS = 200.0


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _p50(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def embedders(pipeline: FacePipeline) -> dict[str, Any]:
    models = pipeline.models

    def service(rgb: np.ndarray) -> np.ndarray | None:
        faces = pipeline.analyze(rgb, max_faces=1)
        return faces[0].embedding if faces else None

    def plain(rgb: np.ndarray) -> np.ndarray | None:
        found = plain_dlib_faces(rgb, models)
        if not found:
            return None
        rect, emb = max(found, key=lambda f: f[0].width() * f[0].height())
        return emb

    return {"service": service, "plain_dlib": plain}


def accuracy(data_dir: Path, pipeline: FacePipeline) -> dict[str, Any]:
    root = data_dir / "faces"
    out = {}
    for truth in sorted(root.glob("*/truth.csv")):
        out[truth.parent.name] = evaluate(truth.parent, embedders(pipeline))
    # all folders as one set (identities do not overlap between folders except by name, which is the truth)
    return out


def _pooled(acc: dict[str, Any], pipeline: str) -> dict[str, Any]:
    probes = correct = pairs = 0
    acc_sum = 0.0
    for folder in acc.values():
        p = folder["pipelines"][pipeline]
        probes += p["identification"]["probes"]
        correct += p["identification"]["correct"]
        v = p["verification"]
        if v["pairs"]:
            pairs += v["pairs"]
            acc_sum += v["accuracy"] * v["pairs"]
    return {"rank1": correct / probes if probes else None, "probes": probes,
            "verification_accuracy": acc_sum / pairs if pairs else None, "pairs": pairs}


def stage_latency(data_dir: Path, pipeline: FacePipeline, photos: list[Path], reps: int = 3) -> dict[str, Any]:
    """Per-stage time of the service pipeline and the plain dlib pipeline on the same photos."""
    from bio_shared.images import decode_image

    models = pipeline.models
    st: dict[str, list[float]] = {k: [] for k in ("decode", "detect", "landmarks_align", "descriptor", "total_service",
                                                   "descriptor_dlib_forward", "plain_detect_hog_up1", "plain_total")}
    for path in photos:
        data = path.read_bytes()
        for _ in range(reps):
            t0 = time.perf_counter()
            rgb = decode_image(data, mode="rgb").pixels
            t1 = time.perf_counter()
            boxes = pipeline.detect(rgb)
            t2 = time.perf_counter()
            faces = []
            t_desc = 0.0
            for box, score in boxes:
                ta = time.perf_counter()
                face = pipeline.describe(rgb, box, score, embed=False)
                tb = time.perf_counter()
                pipeline.embed_chip(face.chip)
                t_desc += time.perf_counter() - tb
                faces.append(tb - ta)
            t3 = time.perf_counter()
            st["decode"].append(t1 - t0)
            st["detect"].append(t2 - t1)
            st["landmarks_align"].append(sum(faces))
            st["descriptor"].append(t_desc)
            st["total_service"].append(t3 - t0)
            if boxes:
                chip = pipeline.describe(rgb, boxes[0][0], embed=False).chip
                t = time.perf_counter()
                models.resnet.compute_face_descriptor(chip)
                st["descriptor_dlib_forward"].append(time.perf_counter() - t)
            t0 = time.perf_counter()
            rgb = decode_image(data, mode="rgb").pixels
            t1 = time.perf_counter()
            rects = models.hog(rgb, 1)
            t2 = time.perf_counter()
            for r in rects:
                models.resnet.compute_face_descriptor(rgb, models.sp5(rgb, r), 1)
            t3 = time.perf_counter()
            st["plain_detect_hog_up1"].append(t2 - t1)
            st["plain_total"].append(t3 - t0)
    return {k: round(_p50(v) * 1e3, 1) for k, v in st.items()}


def api_latency(data_dir: Path, enroll_photos: list[Path], probes: list[Path], reps: int = 3) -> dict[str, Any]:
    """Enrollment and identify p50 through the service app (identity check, decoding, pipeline, SQLite), on
    one process. What the gateway adds in front (JWT, rate limit, proxy) is measured once for every service
    by tests/bench/gateway_overhead.py: services never import the gateway."""
    from fastapi.testclient import TestClient

    from bio_face_recognition.app import SERVICE
    from bio_shared.db import migrate
    from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity

    out: dict[str, Any] = {"through": "service app (signed gateway identity); gateway overhead: "
                                      "reports/gateway_overhead"}
    with tempfile.TemporaryDirectory(prefix="fr-bench-") as tmp:
        settings = SERVICE.settings(env="test", var_dir=Path(tmp) / "var", database_url="", redis_url="",
                                    jobs_mode="inprocess", log_level="WARNING")
        migrate(SERVICE.package, settings.database_url)
        app = SERVICE.create_app(settings)
        with TestClient(app) as c:
            headers = {IDENTITY_HEADER: sign_identity(Identity("bench", "user"), settings.internal_secret)}
            eid = c.post("/api/v1/faces/events", json={"name": "bench"}, headers=headers).json()["id"]
            times = []
            for i, p in enumerate(enroll_photos):
                t = time.perf_counter()
                r = c.post(f"/api/v1/faces/events/{eid}/people", data={"name": f"p{i}", "largest": "true"},
                           files=[("files", (p.name, p.read_bytes(), "image/jpeg"))], headers=headers)
                times.append(time.perf_counter() - t)
                if r.status_code != 201:
                    out.setdefault("enroll_refused", []).append({"file": p.name, "status": r.status_code})
            out["enroll_p50_ms"] = round(_p50(times) * 1e3, 1)
            out["enrolled"] = len(enroll_photos) - len(out.get("enroll_refused", []))
            times = []
            for p in probes:
                data = p.read_bytes()
                for _ in range(reps):
                    t = time.perf_counter()
                    r = c.post(f"/api/v1/faces/events/{eid}/identify", files={"file": (p.name, data, "image/jpeg")},
                               data={"store_unknowns": "false"}, headers=headers)
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200, r.text
            out["identify_p50_ms"] = round(_p50(times) * 1e3, 1)
            out["identify_p90_ms"] = round(float(np.percentile(times, 90)) * 1e3, 1)
            out["identify_requests"] = len(times)
    return out


def synthetic(n: int, rng: np.random.Generator) -> np.ndarray:
    """dlib-like embeddings: 128-d, norm about 1 (random directions around a common mean)."""
    mean = rng.normal(0, 1, 128).astype(np.float32)
    mean /= np.linalg.norm(mean)
    x = rng.normal(0, 1, (n, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return (0.55 * mean + 0.45 * x * 1.8).astype(np.float32) / 1.2


def scale(queries: int = 200) -> dict[str, Any]:
    """Search time alone (numpy exact), memory and load time from the database, per gallery size."""
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    for n in SCALES:
        matrix = synthetic(n, rng)
        people = [f"{i:032x}" for i in range(n)]
        before = _rss_mb()
        t = time.perf_counter()
        g = Gallery(people, [f"e{i:031x}" for i in range(n)], matrix)
        build_s = time.perf_counter() - t
        q = synthetic(queries, rng)
        g.search(q[0], 5)
        times = []
        for v in q:
            t = time.perf_counter()
            g.search(v, 5)
            times.append(time.perf_counter() - t)
        out[str(n)] = {"people": n, "matrix_mb": round(g.nbytes / 2**20, 1),
                       "rss_growth_mb": round(_rss_mb() - before, 1),
                       "build_s": round(build_s, 3), "search_p50_ms": round(_p50(times) * 1e3, 3),
                       "search_p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3)}
        del g, matrix
    out["db_load_100000"] = db_load(100_000, rng)
    return out


def db_load(n: int, rng: np.random.Generator) -> dict[str, Any]:
    """Insert n people with one embedding each into a fresh SQLite database, then time the cold load
    of the event's matrix (what the first identify of a process, or one after a change, pays)."""
    from sqlalchemy import insert

    from bio_face_recognition.models import FaceEmbedding, FaceEvent, Person
    from bio_face_recognition.service.common import vector_bytes
    from bio_face_recognition.service.galleries import load_gallery
    from bio_shared.db import dispose_engines, get_engine, migrate, session_factory, utcnow

    m = load_models()
    with tempfile.TemporaryDirectory(prefix="fr-scale-") as tmp:
        url = f"sqlite:///{tmp}/scale.db"
        migrate("bio_face_recognition", url)
        now = utcnow()
        t = time.perf_counter()
        with get_engine(url).begin() as conn:
            conn.execute(insert(FaceEvent), [dict(id="e" * 32, owner_id="bench", name="scale", threshold=0.6,
                                                  detector="hog", landmarks=5, top_k=5, keep_images=False,
                                                  min_face_px=None, unknown_retention_s=0, refuse_duplicates=False,
                                                  version=1, created_at=now, updated_at=now)])
            vecs = synthetic(n, rng)
            for start in range(0, n, 20_000):
                ids = range(start, min(n, start + 20_000))
                conn.execute(insert(Person), [dict(id=f"{i:032x}", owner_id="bench", event_id="e" * 32,
                                                   name=f"person {i}", created_at=now, updated_at=now) for i in ids])
                conn.execute(insert(FaceEmbedding), [dict(
                    id=f"f{i:031x}", owner_id="bench", event_id="e" * 32, person_id=f"{i:032x}",
                    vector=vector_bytes(vecs[i]), model=m.model_name, model_version=m.model_version,
                    created_at=now) for i in ids])
        insert_s = time.perf_counter() - t
        sessions = session_factory(url)
        before = _rss_mb()
        t = time.perf_counter()
        with sessions() as s:
            g = load_gallery(s, "e" * 32, (m.model_name, m.model_version))
        load_s = time.perf_counter() - t
        grown = _rss_mb() - before
        t = time.perf_counter()
        g.search(vecs[123], 5)
        first = time.perf_counter() - t
        assert len(g) == n and g.search(vecs[123], 1)[0].person_id == f"{123:032x}"
        dispose_engines()
    return {"people": n, "insert_s": round(insert_s, 2), "load_s": round(load_s, 3),
            "rss_growth_mb": round(grown, 1), "first_search_ms": round(first * 1e3, 2), "backend": "sqlite"}


def run(data_dir: Path, out: Path) -> dict[str, Any]:
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})  # one core
        cores = "1 (sched_setaffinity)"
    except (AttributeError, OSError):
        cores = "all"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    pipeline = FacePipeline()
    faces = data_dir / "faces"
    report: dict[str, Any] = {"machine": platform.processor() or platform.machine(), "cores": cores,
                              "model": pipeline.model_name, "model_version": pipeline.model_version,
                              "detect_max_pixels": pipeline.detect_max_pixels, "descriptor": pipeline.descriptor}
    acc = accuracy(data_dir, pipeline)
    report["accuracy"] = acc
    report["accuracy_pooled"] = {name: _pooled(acc, name) for name in ("service", "plain_dlib")}
    from PIL import Image

    def mp(p: Path) -> float:
        with Image.open(p) as im:
            return im.size[0] * im.size[1] / 1e6

    all_photos = sorted(p for p in faces.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                        and "aligned" not in p.parts[-2])
    about_1mp = [p for p in all_photos if 0.7 <= mp(p) <= 1.5][:8]
    report["speed_photos"] = [str(p.relative_to(faces)) for p in about_1mp]
    report["stages_ms_p50"] = stage_latency(data_dir, pipeline, about_1mp)
    single = [faces / "face_recognition" / r for r in (
        "test_images/obama.jpg", "knn_examples/train/biden/biden2.jpg", "knn_examples/train/alex_lacamoire/img1.jpg",
        "knn_examples/train/rose_leslie/img1.jpg", "knn_examples/train/kit_harington/john1.jpeg")] + [
        faces / "openface" / r for r in ("adams.jpg", "carell.jpg", "lennon-1.jpg", "clapton-1.jpg")]
    report["api"] = api_latency(data_dir, [p for p in single if p.is_file()], about_1mp)
    report["scale"] = scale()
    report["seconds"] = round(time.perf_counter() - t0, 1)
    write(report, out)
    return report


def write(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    out.with_suffix(".md").write_text(markdown(report))


def markdown(r: dict[str, Any]) -> str:
    L = ["# Face recognition benchmark", "",
         f"Model `{r['model']}` `{r['model_version']}` (forward pass: {r['descriptor']}); "
         f"detection budget {r['detect_max_pixels']:,} px; "
         f"cores: {r['cores']}; {r['seconds']} s in all. Timings on a shared 2-core machine are noisy.", "",
         "## Accuracy (service pipeline vs plain dlib: HOG with one upsampling, 5-point, one jitter)", "",
         "| folder | pipeline | images | no face | rank-1 | probes | pairs | acc @0.6 | FNMR | FMR | EER "
         "| genuine mean | impostor mean | s/photo |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def f(x: Any, nd: int = 3) -> str:
        if x is None or (isinstance(x, float) and np.isnan(x)):
            return "-"
        return f"{x:.{nd}f}" if isinstance(x, float) else str(x)

    for folder, res in r["accuracy"].items():
        for name, p in res["pipelines"].items():
            i, v = p["identification"], p["verification"]
            L.append(f"| {folder} | {name} | {res['images']} | {len(p['no_face'])} | {f(i['rank1'])} | {i['probes']} | "
                     f"{v['pairs']} | {f(v['accuracy'])} | {f(v['fnmr'])} | {f(v['fmr'])} | {f(v['eer'])} | "
                     f"{f(v['genuine'].get('mean'))} | {f(v['impostor'].get('mean'))} | "
                     f"{f(p['seconds_per_photo_p50'])} |")
    L += ["", "Pooled over all folders:", "", "| pipeline | rank-1 | probes | verification accuracy @0.6 | pairs |",
          "|---|---:|---:|---:|---:|"]
    for name, p in r["accuracy_pooled"].items():
        L.append(f"| {name} | {f(p['rank1'])} | {p['probes']} | {f(p['verification_accuracy'])} | {p['pairs']} |")
    s = r["stages_ms_p50"]
    L += ["", f"## Speed on one core (photos of about 1 megapixel: {len(r['speed_photos'])})", "",
          "| stage (p50 per photo) | ms |", "|---|---:|"]
    L += [f"| {k} | {v} |" for k, v in s.items()]
    a = r["api"]
    L += ["", f"Through {a['through']}:", "",
          f"* enrollment p50 per photo: **{a['enroll_p50_ms']} ms** ({a['enrolled']} photos)",
          f"* identify end to end p50: **{a['identify_p50_ms']} ms** (p90 {a['identify_p90_ms']} ms, "
          f"{a['identify_requests']} requests; target < {TARGET_IDENTIFY_MS:.0f} ms)", "",
          "## 1:N search (numpy, exact, k=5, synthetic embeddings)", "",
          "| people | matrix MB | RSS growth MB | build s | search p50 ms | search p99 ms |",
          "|---:|---:|---:|---:|---:|---:|"]
    for n in SCALES:
        x = r["scale"][str(n)]
        L.append(f"| {n:,} | {x['matrix_mb']} | {x['rss_growth_mb']} | {x['build_s']} | {x['search_p50_ms']} | "
                 f"{x['search_p99_ms']} |")
    d = r["scale"]["db_load_100000"]
    L += ["", f"Cold load of an event of {d['people']:,} people from {d['backend']}: **{d['load_s']} s** "
          f"(RSS +{d['rss_growth_mb']} MB; insert took {d['insert_s']} s); first search after it "
          f"{d['first_search_ms']} ms; target for search: < {TARGET_SEARCH_MS:.0f} ms.",
          ""]
    return "\n".join(L)


def summary(r: dict[str, Any]) -> str:
    ps, pp = r["accuracy_pooled"]["service"], r["accuracy_pooled"]["plain_dlib"]
    x = r["scale"]["100000"]
    return (f"rank-1 service {ps['rank1']:.3f} vs plain {pp['rank1']:.3f}; verification acc service "
            f"{ps['verification_accuracy']:.3f} vs plain {pp['verification_accuracy']:.3f}; "
            f"service pipeline {r['stages_ms_p50']['total_service']} ms vs plain "
            f"{r['stages_ms_p50']['plain_total']} ms per ~1 MP photo; identify p50 {r['api']['identify_p50_ms']} ms; "
            f"enroll p50 {r['api']['enroll_p50_ms']} ms; "
            f"search 100k p50 {x['search_p50_ms']} ms; 100k load {r['scale']['db_load_100000']['load_s']} s")
