"""``bio-face-verify bench``: accuracy on the sample faces and latency on one CPU core.

Latency is measured in this process pinned to one core (like ``taskset -c N``) with one torch thread:

* MTCNN detection and each embedding on a 640 x 480 photo (engine calls, after a warm-up);
* a verification job end to end, submit to result, for two 640 x 480 photos: through the service app
  (HTTP via the ASGI test client, SQLite jobs table, one in-process job thread = one worker), both
  polling the status URL and with the synchronous ``?wait=``;
* throughput: N jobs submitted at once, drained by that one worker, in jobs per second.

FaceNet timings use the cached VGGFace2 weights when present, else a randomly initialised network of
the same shape (the compute is identical; no accuracy is claimed for it). Timings never fail the run.
"""

from __future__ import annotations

import io
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bio_face_verify.evaluate import evaluate, markdown_table

PAIR = ("openface/lennon-1.jpg", "openface/lennon-2.jpg")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def _summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(_pct(values, 50), 1), "p95_ms": round(_pct(values, 95), 1),
            "mean_ms": round(statistics.fmean(values) * 1000.0, 1)}


def photo_640x480(path: Path) -> np.ndarray:
    """Centre crop to 4:3, then resize to 640 x 480."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w / h > 4 / 3:
        cw = int(h * 4 / 3)
        img = img.crop(((w - cw) // 2, 0, (w - cw) // 2 + cw, h))
    else:
        ch = int(w * 3 / 4)
        img = img.crop((0, (h - ch) // 2, w, (h - ch) // 2 + ch))
    return np.asarray(img.resize((640, 480), Image.Resampling.LANCZOS))


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def engine_latency(photos: list[np.ndarray], runs: int) -> dict[str, Any]:
    import torch

    from bio_face_verify.engine import nets
    from bio_face_verify.engine.embed import DlibEmbedder, FacenetEmbedder
    from bio_face_verify.engine.mtcnn import MTCNN

    detector = MTCNN()
    out: dict[str, Any] = {}
    faces = [max(detector.detect(p, 40), key=lambda f: f.area) for p in photos]
    for min_face in (40, 20):
        times = []
        for i in range(runs):
            t = time.perf_counter()
            detector.detect(photos[i % len(photos)], min_face)
            times.append(time.perf_counter() - t)
        out[f"mtcnn_detect_min_face_{min_face}px"] = _summary(times)
    embedders: dict[str, Any] = {"dlib-resnet-v1": DlibEmbedder()}
    weights = nets.facenet_weights_path()
    if weights.is_file():
        embedders["facenet-vggface2"] = FacenetEmbedder(weights)
        out["facenet_weights"] = "pretrained (cached)"
    else:
        tmp = Path(tempfile.mkdtemp()) / "random-facenet.pt"
        torch.manual_seed(0)
        torch.save(nets.InceptionResnetV1().state_dict(), tmp)
        embedders["facenet-vggface2"] = FacenetEmbedder(tmp)
        out["facenet_weights"] = "randomly initialised (timing only)"
    for name, emb in embedders.items():
        emb.embed(photos[0], faces[0])
        times = []
        for i in range(runs):
            t = time.perf_counter()
            emb.embed(photos[i % len(photos)], faces[i % len(faces)])
            times.append(time.perf_counter() - t)
        out[f"embed_{name}"] = _summary(times)
    return out


def job_latency(photos: list[np.ndarray], runs: int, throughput_jobs: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from bio_face_verify.app import SERVICE
    from bio_shared.db import migrate
    from bio_shared.identity import IDENTITY_HEADER, Identity, sign_identity

    files = {"image_a": ("a.jpg", _jpeg(photos[0]), "image/jpeg"), "image_b": ("b.jpg", _jpeg(photos[1]), "image/jpeg")}
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # the embedded mode with one job thread = one worker (SQLite jobs table, in-process jobs)
        settings = SERVICE.settings(env="test", var_dir=Path(tmp) / "var", database_url="", redis_url="",
                                    jobs_mode="inprocess", embedded_job_threads=1, log_level="WARNING")
        migrate(SERVICE.package, settings.database_url)
        with TestClient(SERVICE.create_app(settings)) as client:
            out.update(_timed_jobs(client, f"{SERVICE.prefix}/jobs/verify", files, runs, throughput_jobs,
                                   lambda: {IDENTITY_HEADER: sign_identity(Identity("bench", "user"),
                                                                           settings.internal_secret, 600)}))
    return out


def _timed_jobs(client: Any, url: str, files: dict[str, Any], runs: int, throughput_jobs: int,
                headers: Any) -> dict[str, Any]:
    """Submit-to-result latency (polling and ?wait=) and throughput with one job thread."""
    out: dict[str, Any] = {}

    def one(wait: bool) -> tuple[float, dict[str, Any]]:
        t = time.perf_counter()
        resp = client.post(url, files=files, headers=headers(), params={"wait": 30} if wait else None)
        body = resp.json()
        while body["status"] not in ("succeeded", "failed"):
            time.sleep(0.005)
            body = client.get(body["status_url"], headers=headers()).json()
        return time.perf_counter() - t, body

    _, warm = one(True)
    out["model"] = (warm.get("result") or {}).get("model")
    out["verified"] = (warm.get("result") or {}).get("verified")
    for mode in ("poll", "wait"):
        times = []
        for _ in range(runs):
            dt, body = one(mode == "wait")
            assert body["status"] == "succeeded", body
            times.append(dt)
        out[f"end_to_end_{mode}"] = _summary(times)
    t = time.perf_counter()
    urls = [client.post(url, files=files, headers=headers()).json()["status_url"] for _ in range(throughput_jobs)]
    for status_url in urls:
        while client.get(status_url, headers=headers()).json()["status"] not in ("succeeded", "failed"):
            time.sleep(0.02)
    elapsed = time.perf_counter() - t
    out["throughput"] = {"jobs": throughput_jobs, "seconds": round(elapsed, 2),
                         "jobs_per_s": round(throughput_jobs / elapsed, 2)}
    return out


def run_bench(settings: Any, out: Path, cpu: int | None, runs: int, throughput_jobs: int,
              skip_accuracy: bool = False) -> dict[str, Any]:
    from bio_shared.inference import configure_torch

    cores = sorted(os.sched_getaffinity(0))
    core = cpu if cpu is not None else cores[-1]
    os.sched_setaffinity(0, {core})
    os.environ["BIO_TORCH_THREADS"] = "1"
    configure_torch(1)
    faces_dir = Path(settings.data_dir) / "faces"
    report: dict[str, Any] = {
        "machine": {"cpu_pinned": core, "cpus_available": len(cores), "torch_threads": 1,
                    "processor": platform.processor() or platform.machine(),
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
    }
    if not skip_accuracy:
        print(f"accuracy on {faces_dir} ...", flush=True)
        t = time.perf_counter()
        report["accuracy"] = evaluate(faces_dir, progress=lambda m: print("  " + m, flush=True))
        report["accuracy"]["seconds"] = round(time.perf_counter() - t, 1)
    if not skip_accuracy:
        from bio_face_verify.bench_pose import run_pose_bench
        from bio_face_verify.engine.pose import PoseTolerance

        print("frontal check ...", flush=True)
        tol = PoseTolerance(settings.max_yaw_deg, settings.max_pitch_deg, settings.max_roll_deg)
        report["frontal_check"] = run_pose_bench(faces_dir, tol, progress=lambda m: print("  " + m, flush=True))
    photos = [photo_640x480(faces_dir / rel) for rel in PAIR]
    print("engine latency (640 x 480) ...", flush=True)
    report["engine_latency"] = engine_latency(photos, runs)
    print("verification jobs end to end ...", flush=True)
    report["jobs"] = job_latency(photos, runs, throughput_jobs)
    report["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    write_report(report, out)
    return report


def write_report(report: dict[str, Any], out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str))
    out.with_suffix(".md").write_text(render(report))


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = ["# face-verify benchmark", "",
             f"One CPU core (core {m['cpu_pinned']} of {m['cpus_available']}, {m['processor']}), one torch thread. "
             f"Load average at start {m['load_average_at_start']}, at end {m.get('load_average_at_end')}: "
             "timings on a shared machine are noisy.", ""]
    if "accuracy" in report:
        lines += ["## Accuracy", "", markdown_table(report["accuracy"]), "",
                  "Failed images per pipeline: "
                  + "; ".join(f"{k}: {v['failed_images'] or 'none'}" for k, v in report["accuracy"]["pipelines"].items()),
                  ""]
    if "frontal_check" in report:
        from bio_face_verify.bench_pose import render as render_pose

        lines += render_pose(report["frontal_check"]) + ["", "Command: `bio-face-verify bench` (this report).", ""]
    lines += ["## Latency (640 x 480 photos)", "", "| what | n | p50 ms | p95 ms |", "|---|---:|---:|---:|"]
    for key, val in report["engine_latency"].items():
        if isinstance(val, dict):
            lines.append(f"| {key} | {val['n']} | {val['p50_ms']} | {val['p95_ms']} |")
    jobs = report["jobs"]
    for key in ("end_to_end_poll", "end_to_end_wait"):
        val = jobs[key]
        lines.append(f"| verification job {key.removeprefix('end_to_end_')} (submit to result, 2 photos, "
                     f"{jobs['model']}) | {val['n']} | {val['p50_ms']} | {val['p95_ms']} |")
    tp = jobs["throughput"]
    lines += ["", f"FaceNet weights: {report['engine_latency'].get('facenet_weights')}. Target: end to end "
              f"p50 < 600 ms for two 640 x 480 photos on one core.", "",
              f"Throughput with one worker: {tp['jobs']} jobs in {tp['seconds']} s = **{tp['jobs_per_s']} jobs/s**."]
    return "\n".join(lines) + "\n"


def summary(report: dict[str, Any]) -> str:
    parts = []
    for name, m in report.get("accuracy", {}).get("pipelines", {}).items():
        if "accuracy" in m:
            parts.append(f"{name}: accuracy {m['accuracy']:.4f} EER {m['eer']:.4f} TAR@FAR1% {m['tar_at_far_1pct']:.4f}")
    if "frontal_check" in report:
        held = report["frontal_check"]["held_out"]["summary"]
        parts.append(f"frontal check (held-out): false-reject rate {held['false_reject_rate']:.2%}, roll within 5 deg "
                     f"{held['roll']['within_5_deg']}/{held['roll']['rotated_copies']}, profile-like probes rejected "
                     f"{held['profile_probes']['rejected']}/{held['profile_probes']['probes']}")
    lat = report["engine_latency"]
    jobs = report["jobs"]
    parts.append(f"mtcnn p50 {lat['mtcnn_detect_min_face_40px']['p50_ms']} ms; dlib embed p50 "
                 f"{lat['embed_dlib-resnet-v1']['p50_ms']} ms; facenet embed p50 {lat['embed_facenet-vggface2']['p50_ms']} ms")
    parts.append(f"job end to end p50 {jobs['end_to_end_poll']['p50_ms']} ms p95 {jobs['end_to_end_poll']['p95_ms']} ms "
                 f"(wait: p50 {jobs['end_to_end_wait']['p50_ms']} ms); {jobs['throughput']['jobs_per_s']} jobs/s")
    return "\n".join(parts)
