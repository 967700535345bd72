"""Fingerprint use cases: process, enroll, templates (ISO / JSON), verify, identify, batch jobs,
outputs and their clean-up, distortion classification. No FastAPI here: the API, the Celery tasks and
the CLI call these functions."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select

from bio_fingerprint.engine import matcher
from bio_fingerprint.engine.enhance import EnhanceMethods
from bio_fingerprint.engine.enhance import load as load_enhancement
from bio_fingerprint.engine.normalize import normalize_print
from bio_fingerprint.engine.pipeline import Processed, process
from bio_fingerprint.engine.template import FINGER_POSITIONS, Template, TemplateFormatError, resample_to_500dpi
from bio_fingerprint.models import FingerprintOutput, FingerprintTemplate
from bio_shared.db import session_scope, utcnow
from bio_shared.errors import BadRequest, BioError, NotFound, Unprocessable
from bio_shared.identity import Identity
from bio_shared.images import encode_png
from bio_shared.inference import timed_inference
from bio_shared.jobs import JobContext, new_id
from bio_shared.metrics import GALLERY_SIZE
from bio_shared.runtime import ServiceRuntime
from bio_shared.uploads import decode_for, register_normalize_job

log = logging.getLogger(__name__)
PROCESS_KIND = "process"


# -- score <-> false match rate ----------------------------------------------------------------------
@lru_cache(maxsize=4)
def fmr_table(extractor: str = "leader") -> dict[str, Any]:
    """The score-to-FMR table measured on impostor comparisons (``bio-fingerprint calibrate``), one per
    minutiae extractor (their score distributions differ)."""
    path = resources.files("bio_fingerprint") / "weights" / f"score_fmr_{extractor}.json"
    return json.loads(path.read_text())


def threshold_for(fmr: float, extractor: str = "leader") -> float:
    """Lowest score whose measured impostor FMR is at most ``fmr`` (log-interpolated between points)."""
    if not (0 < fmr < 1):
        raise BadRequest("fmr must be between 0 and 1 (e.g. 0.001)", code="invalid_fmr")
    pts = fmr_table(extractor)["points"]  # [{"fmr": f, "threshold": t}], fmr decreasing
    fmrs = np.array([p["fmr"] for p in pts])
    ths = np.array([p["threshold"] for p in pts])
    if fmr >= fmrs[0]:
        return float(ths[0])
    if fmr <= fmrs[-1]:
        return float(ths[-1])
    return float(np.interp(np.log10(fmr), np.log10(fmrs[::-1]), ths[::-1]))


def fmr_of(score: float, extractor: str = "leader") -> float:
    """Estimated false-match rate at this score (share of impostor scores at or above it)."""
    pts = fmr_table(extractor)["points"]
    fmrs = np.array([p["fmr"] for p in pts])
    ths = np.array([p["threshold"] for p in pts])
    if score <= ths[0]:
        return float(fmrs[0])
    if score >= ths[-1]:
        return float(fmrs[-1])
    return float(10 ** np.interp(score, ths, np.log10(fmrs)))


# -- engine, loaded once per process ------------------------------------------------------------------
class Engine:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._classifier = None
        self._lock = threading.Lock()

    def methods(self, preset: str | None) -> EnhanceMethods:
        try:
            return EnhanceMethods.preset(preset or self.settings.enhancement)
        except ValueError as exc:
            raise BadRequest(str(exc), code="invalid_enhancement") from exc

    def load(self) -> None:
        load_enhancement(self.methods(None))
        if self.extractor == "leader":
            from bio_fingerprint.engine.enhance import leader_minutiae

            tiny = np.full((96, 96), 200, np.uint8)
            tiny[::9] = 40
            leader_minutiae(tiny)  # builds the LEADER network once per process
        matcher.score(np.array([[10, 10, 0, 1, 50], [40, 10, 1, 1, 50], [10, 40, 2, 2, 50], [40, 40, 3, 1, 50]],
                               np.float32), np.array([[10, 10, 0, 1, 50], [40, 10, 1, 1, 50], [10, 40, 2, 2, 50],
                                                      [40, 40, 3, 1, 50]], np.float32))  # compile or load the cache
        if self.settings.load_classifier:
            self.classifier()

    def classifier(self):
        with self._lock:
            if self._classifier is None:
                from bio_fingerprint.engine.classifier import DistortionClassifier

                self._classifier = DistortionClassifier()
            return self._classifier

    @property
    def extractor(self) -> str:
        return self.settings.extractor

    def process(self, gray: np.ndarray, steps: list[dict] | None, preset: str | None, dpi: int = 500,
                enhance_ridges: bool = True) -> Processed:
        try:
            with timed_inference("fingerprint", f"enhance+{self.extractor}"):
                return process(gray, steps, self.methods(preset), dpi, self.extractor, enhance_ridges)
        except ValueError as exc:
            raise Unprocessable(str(exc), code="invalid_steps") from exc


def engine(rt: ServiceRuntime) -> Engine:
    if "engine" not in rt.options:
        rt.options["engine"] = Engine(rt.settings)
    return rt.options["engine"]


# -- helpers --------------------------------------------------------------------------------------
def _pack(m: np.ndarray) -> bytes:
    return np.ascontiguousarray(m, np.float32).tobytes()


def _unpack(b: bytes) -> np.ndarray:
    return np.frombuffer(b, np.float32).reshape(-1, 5).copy()


def template_of(row: FingerprintTemplate) -> Template:
    return Template(_unpack(row.minutiae), row.width, row.height, row.dpi, row.finger, row.impression,
                    row.quality, row.algorithm, row.algorithm_version)


def template_dict(row: FingerprintTemplate) -> dict[str, Any]:
    return {"id": row.id, "subject": row.subject, "finger": row.finger,
            "finger_name": FINGER_POSITIONS.get(row.finger, "unknown"), "impression": row.impression,
            "algorithm": row.algorithm, "algorithm_version": row.algorithm_version, "quality": row.quality,
            "minutiae_count": row.minutiae_count, "width": row.width, "height": row.height, "dpi": row.dpi,
            "source": row.source, "output_id": row.output_id, "created_at": row.created_at.isoformat()}


def output_dict(rt: ServiceRuntime, row: FingerprintOutput) -> dict[str, Any]:
    base = f"{rt.prefix}/outputs/{row.id}"
    return {"id": row.id, "job_id": row.job_id, "filename": row.filename, "template_id": row.template_id,
            "quality": row.quality, "minutiae_count": row.minutiae_count, "width": row.width,
            "height": row.height, "details": row.details, "created_at": row.created_at.isoformat(),
            "image_url": f"{base}/image", "template_url": f"{base}/template"}


def check_finger(finger: int) -> int:
    if finger not in FINGER_POSITIONS:
        raise BadRequest("finger must be an ISO/IEC 19794-2 finger position 0-10 (0 unknown, 1 right thumb, "
                         "... 10 left little)", code="invalid_finger")
    return finger


def check_subject(subject: str) -> str:
    s = (subject or "").strip()
    if not s or len(s) > 128:
        raise BadRequest("subject must be 1-128 characters", code="invalid_subject")
    return s


# -- processing -------------------------------------------------------------------------------------
def process_bytes(rt: ServiceRuntime, owner_id: str, data: bytes, filename: str | None, *,
                  steps: list[dict] | None = None, preset: str | None = None, dpi: int = 500,
                  job_id: str | None = None) -> tuple[FingerprintOutput, Processed]:
    """Decode, enhance, extract; store the enhanced image and the output row."""
    decoded = decode_for(rt, data, "gray")
    result = engine(rt).process(decoded.pixels, steps, preset, dpi)
    h, w = result.enhanced.gray.shape
    key = rt.blobs.put(rt.blobs.new_key(owner_id, "fingerprint-outputs", "png"), encode_png(result.enhanced.enhanced))
    row = FingerprintOutput(id=new_id(), owner_id=owner_id, job_id=job_id, filename=(filename or "")[:255] or None,
                            image_key=key, quality=result.quality.score, minutiae_count=len(result.minutiae),
                            width=w, height=h, minutiae=_pack(result.minutiae),
                            details={"quality": result.quality.to_dict(), "steps": steps or [],
                                     "enhancement": engine(rt).methods(preset).__dict__},
                            created_at=utcnow())
    try:
        with session_scope(rt.sessions) as s:
            s.add(row)
    except Exception:
        rt.blobs.delete(key)
        raise
    return row, result


def _next_impression(s: Any, owner_id: str, subject: str, finger: int) -> int:
    q = select(func.max(FingerprintTemplate.impression)).where(
        FingerprintTemplate.owner_id == owner_id, FingerprintTemplate.subject == subject,
        FingerprintTemplate.finger == finger)
    return int(s.scalar(q) or 0) + 1


def store_template(rt: ServiceRuntime, owner_id: str, subject: str, finger: int, tpl: Template, source: str,
                   impression: int | None = None, output_id: str | None = None,
                   min_quality: int | None = None) -> FingerprintTemplate:
    subject = check_subject(subject)
    check_finger(finger)
    threshold = rt.settings.enroll_min_quality if min_quality is None else min_quality
    if tpl.quality < threshold:
        raise Unprocessable(f"print quality {tpl.quality} is under the enrollment minimum {threshold}",
                            code="quality_too_low", details={"quality": tpl.quality, "minimum": threshold})
    if len(tpl.minutiae) < 5:
        raise Unprocessable(f"template has {len(tpl.minutiae)} minutiae; at least 5 are needed",
                            code="too_few_minutiae")
    with session_scope(rt.sessions) as s:
        imp = impression if impression is not None else _next_impression(s, owner_id, subject, finger)
        row = FingerprintTemplate(id=new_id(), owner_id=owner_id, subject=subject, finger=finger, impression=imp,
                                  algorithm=tpl.algorithm, algorithm_version=tpl.version, quality=int(tpl.quality),
                                  minutiae_count=len(tpl.minutiae), width=tpl.width, height=tpl.height, dpi=tpl.dpi,
                                  minutiae=_pack(tpl.minutiae), source=source, output_id=output_id,
                                  created_at=utcnow())
        s.add(row)
        if output_id:
            out = s.get(FingerprintOutput, output_id)
            if out is not None and out.owner_id == owner_id:
                out.template_id = row.id
    return row


def enroll_image(rt: ServiceRuntime, owner_id: str, data: bytes, filename: str | None, subject: str, finger: int,
                 impression: int | None = None, steps: list[dict] | None = None, preset: str | None = None,
                 dpi: int = 500, job_id: str | None = None) -> dict[str, Any]:
    check_subject(subject)
    check_finger(finger)
    out, result = process_bytes(rt, owner_id, data, filename, steps=steps, preset=preset, dpi=dpi, job_id=job_id)
    tpl = result.template(finger, impression or 0)
    try:
        row = store_template(rt, owner_id, subject, finger, tpl, "image", impression, out.id)
    except Unprocessable as exc:
        exc.details = {**(exc.details or {}), "quality": result.quality.to_dict(), "output_id": out.id}
        raise
    return {"template": template_dict(row), "output_id": out.id, "quality": result.quality.to_dict()}


def process_and_enroll(rt: ServiceRuntime, identity: Identity, files: list[tuple[bytes, str | None]], subject: str,
                       finger: int, steps: list[dict] | None, preset: str | None, dpi: int) -> dict[str, Any]:
    """Synchronous enrollment of a few impressions of one finger: per-file outcome; 422 if none enrolled."""
    if not files:
        raise BadRequest("no file given", code="no_files")
    if len(files) > rt.settings.sync_max_files:
        raise BadRequest(f"at most {rt.settings.sync_max_files} files per synchronous call; use POST /jobs/process",
                         code="too_many_files")
    check_subject(subject)
    check_finger(finger)
    items = []
    for data, name in files:
        try:
            items.append({"filename": name, "status": "enrolled",
                          **enroll_image(rt, identity.account_id, data, name, subject, finger, None, steps, preset, dpi)})
        except BioError as exc:
            if len(files) == 1:
                raise
            items.append({"filename": name, "status": "failed", "error": exc.to_dict()})
    enrolled = sum(1 for i in items if i["status"] == "enrolled")
    if enrolled == 0:
        raise Unprocessable("no print could be enrolled", code="nothing_enrolled", details={"items": items})
    return {"subject": subject, "finger": finger, "enrolled": enrolled, "failed": len(items) - enrolled,
            "items": items}


# -- probes -----------------------------------------------------------------------------------------
@dataclass
class Probe:
    minutiae: np.ndarray
    quality: dict[str, Any] | None
    source: str


def probe_from_image(rt: ServiceRuntime, data: bytes, preset: str | None, dpi: int) -> Probe:
    decoded = decode_for(rt, data, "gray")
    # a probe needs minutiae and quality, not the enhanced image: segmentation + LEADER only
    result = engine(rt).process(decoded.pixels, None, preset, dpi, enhance_ridges=False)
    q = result.quality
    if q.score < rt.settings.probe_min_quality or len(result.minutiae) < 5:
        raise Unprocessable("no usable fingerprint in the probe image: " + ("; ".join(q.reasons) or "too few minutiae"),
                            code="unusable_print", details={"quality": q.to_dict()})
    return Probe(result.minutiae, q.to_dict(), "image")


def parse_template(data: bytes, fmt: str | None) -> Template:
    fmt = (fmt or "").lower()
    try:
        if fmt == "iso" or (not fmt and data[:4] == b"FMR\x00"):
            return Template.from_iso(data)
        if fmt in ("json", ""):
            try:
                doc = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise TemplateFormatError("neither an ISO/IEC 19794-2 record nor a JSON template") from exc
            if not isinstance(doc, dict):
                raise TemplateFormatError("JSON template must be an object")
            return Template.from_json(doc)
        raise BadRequest("template format must be iso or json", code="invalid_template_format")
    except TemplateFormatError as exc:
        raise Unprocessable(str(exc), code="invalid_template") from exc


def probe_from_template(data: bytes, fmt: str | None) -> Probe:
    tpl = parse_template(data, fmt)
    if len(tpl.minutiae) < 3:
        raise Unprocessable("template has too few minutiae to match", code="too_few_minutiae")
    return Probe(resample_to_500dpi(tpl), None, "template")


# -- matching -------------------------------------------------------------------------------------
class GalleryCache:
    """Per-owner packed galleries, rebuilt when the owner's templates change (count or newest row)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[tuple, matcher.Gallery, list[dict]]] = {}

    def get(self, rt: ServiceRuntime, owner_id: str) -> tuple[matcher.Gallery, list[dict]]:
        with rt.sessions() as s:
            key = tuple(s.execute(select(func.count(), func.max(FingerprintTemplate.created_at),
                                         func.sum(FingerprintTemplate.minutiae_count))
                                  .where(FingerprintTemplate.owner_id == owner_id)).one())
            with self._lock:
                hit = self._items.get(owner_id)
            if hit and hit[0] == key:
                return hit[1], hit[2]
            rows = list(s.scalars(select(FingerprintTemplate).where(FingerprintTemplate.owner_id == owner_id)
                                  .order_by(FingerprintTemplate.created_at, FingerprintTemplate.id)))
            meta = [{"template_id": r.id, "subject": r.subject, "finger": r.finger, "impression": r.impression}
                    for r in rows]
            gallery = matcher.Gallery([r.id for r in rows], [resample_to_500dpi(template_of(r)) for r in rows])
        with self._lock:
            self._items[owner_id] = (key, gallery, meta)
            if len(self._items) > 64:
                self._items.pop(next(iter(self._items)))
        GALLERY_SIZE.labels("fingerprint", "templates").set(len(gallery))
        return gallery, meta


def galleries(rt: ServiceRuntime) -> GalleryCache:
    if "galleries" not in rt.options:
        rt.options["galleries"] = GalleryCache()
    return rt.options["galleries"]


def verify(rt: ServiceRuntime, identity: Identity, probe: Probe, *, template_id: str | None, subject: str | None,
           finger: int | None, fmr: float | None) -> dict[str, Any]:
    if not template_id and not subject:
        raise BadRequest("give template_id or subject (optionally with finger)", code="no_target")
    fmr = fmr or rt.settings.default_fmr
    ext = rt.settings.extractor
    threshold = threshold_for(fmr, ext)
    with rt.sessions() as s:
        q = select(FingerprintTemplate).where(FingerprintTemplate.owner_id == identity.account_id)
        if template_id:
            q = q.where(FingerprintTemplate.id == template_id)
        if subject:
            q = q.where(FingerprintTemplate.subject == subject)
        if finger is not None:
            q = q.where(FingerprintTemplate.finger == check_finger(finger))
        rows = list(s.scalars(q))
    if not rows:
        raise NotFound("no enrolled template matches the target", code="template_not_found")
    with timed_inference("fingerprint", "match-1:1"):
        scores = [(matcher.score(probe.minutiae, resample_to_500dpi(template_of(r))), r) for r in rows]
    best, row = max(scores, key=lambda t: t[0])
    return {"match": best >= threshold, "score": round(best, 3), "threshold": round(threshold, 3), "fmr": fmr,
            "estimated_fmr": fmr_of(best, ext), "best_template": template_dict(row), "compared": len(rows),
            "probe_quality": probe.quality}


def identify(rt: ServiceRuntime, identity: Identity, probe: Probe, *, top_k: int, fmr: float | None,
             finger: int | None = None) -> dict[str, Any]:
    fmr = fmr or rt.settings.default_fmr
    ext = rt.settings.extractor
    threshold = threshold_for(fmr, ext)
    gallery, meta = galleries(rt).get(rt, identity.account_id)
    with timed_inference("fingerprint", "match-1:N"):
        scores = gallery.scores(probe.minutiae)
    best: dict[tuple[str, int], tuple[float, dict]] = {}
    for sc, m in zip(scores, meta):
        if finger is not None and m["finger"] != finger:
            continue
        k = (m["subject"], m["finger"])
        if k not in best or sc > best[k][0]:
            best[k] = (float(sc), m)
    ranked = sorted(best.values(), key=lambda t: -t[0])
    candidates = [{"subject": m["subject"], "finger": m["finger"], "template_id": m["template_id"],
                   "score": round(sc, 3), "estimated_fmr": fmr_of(sc, ext)}
                  for sc, m in ranked if sc >= threshold][:top_k]
    return {"candidates": candidates, "threshold": round(threshold, 3), "fmr": fmr, "searched": len(gallery),
            "probe_quality": probe.quality}


# -- outputs and templates ----------------------------------------------------------------------------
def _owned(rt: ServiceRuntime, identity: Identity, model: type, row_id: str, what: str) -> Any:
    """The caller's row of model by id; 404 for another account's row as for a missing one."""
    with rt.sessions() as s:
        row = s.get(model, row_id) if len(row_id) <= 32 else None
    if row is None or row.owner_id != identity.account_id:
        raise NotFound(f"{what} not found", code=f"{what}_not_found")
    return row


def get_output(rt: ServiceRuntime, identity: Identity, output_id: str) -> FingerprintOutput:
    return _owned(rt, identity, FingerprintOutput, output_id, "output")


def get_template(rt: ServiceRuntime, identity: Identity, template_id: str) -> FingerprintTemplate:
    return _owned(rt, identity, FingerprintTemplate, template_id, "template")


def list_outputs(rt: ServiceRuntime, identity: Identity, limit: int, offset: int, job_id: str | None = None) -> list:
    with rt.sessions() as s:
        q = select(FingerprintOutput).where(FingerprintOutput.owner_id == identity.account_id)
        if job_id:
            q = q.where(FingerprintOutput.job_id == job_id)
        return list(s.scalars(q.order_by(FingerprintOutput.created_at.desc(), FingerprintOutput.id)
                              .limit(limit).offset(offset)))


def list_templates(rt: ServiceRuntime, identity: Identity, subject: str | None, finger: int | None, limit: int,
                   offset: int) -> list:
    with rt.sessions() as s:
        q = select(FingerprintTemplate).where(FingerprintTemplate.owner_id == identity.account_id)
        if subject:
            q = q.where(FingerprintTemplate.subject == subject)
        if finger is not None:
            q = q.where(FingerprintTemplate.finger == finger)
        return list(s.scalars(q.order_by(FingerprintTemplate.subject, FingerprintTemplate.finger,
                                         FingerprintTemplate.impression).limit(limit).offset(offset)))


def delete_template(rt: ServiceRuntime, identity: Identity, template_id: str) -> None:
    row = get_template(rt, identity, template_id)
    with session_scope(rt.sessions) as s:
        s.execute(delete(FingerprintTemplate).where(FingerprintTemplate.id == row.id))


def delete_output(rt: ServiceRuntime, identity: Identity, output_id: str) -> None:
    row = get_output(rt, identity, output_id)
    with session_scope(rt.sessions) as s:
        s.execute(delete(FingerprintOutput).where(FingerprintOutput.id == row.id))
    rt.blobs.delete(row.image_key)


def output_template(row: FingerprintOutput) -> Template:
    return Template(_unpack(row.minutiae), row.width, row.height, 500, 0, 0, row.quality)


def cleanup(rt: ServiceRuntime, older_than_days: float | None = None) -> dict[str, Any]:
    """Delete processed outputs (rows and images) older than the retention age, for every account.
    Enrolled templates are kept: they are the database, not outputs."""
    days = rt.settings.output_retention_days if older_than_days is None else older_than_days
    cutoff = utcnow() - timedelta(days=days)
    removed = blobs = 0
    while True:
        with session_scope(rt.sessions) as s:
            rows = list(s.execute(select(FingerprintOutput.id, FingerprintOutput.image_key)
                                  .where(FingerprintOutput.created_at < cutoff).limit(500)))
            if not rows:
                break
            s.execute(delete(FingerprintOutput).where(FingerprintOutput.id.in_([r[0] for r in rows])))
        for _, key in rows:
            blobs += int(rt.blobs.delete(key))
        removed += len(rows)
    return {"removed_outputs": removed, "removed_images": blobs, "older_than_days": days,
            "cutoff": cutoff.isoformat()}


def distortion_probabilities(rt: ServiceRuntime, data: bytes) -> dict[str, Any]:
    decoded = decode_for(rt, data, "gray")
    clf = engine(rt).classifier()
    with timed_inference("fingerprint", "distortion-cnn"):
        probs = clf.probabilities(decoded.pixels)
    top = max(probs, key=probs.get)
    return {"probabilities": probs, "predicted": top, "model_version": clf.version}


# -- batch job ------------------------------------------------------------------------------------
def submit_batch(rt: ServiceRuntime, identity: Identity, files: list[tuple[bytes, str | None]],
                 options: dict[str, Any]) -> Any:
    """Store the uploads and submit one job; every file is processed (and optionally enrolled) by the
    worker with a result or an error of its own. Files are not decoded here: a broken file is the job's
    per-file error, the others still run."""
    if not files:
        raise BadRequest("no file given", code="no_files")
    if len(files) > rt.settings.batch_max_files:
        raise BadRequest(f"at most {rt.settings.batch_max_files} files per job", code="too_many_files")
    keys = []
    try:
        for data, _ in files:
            if not data:
                keys.append(None)
                continue
            keys.append(rt.blobs.put(rt.blobs.new_key(identity.account_id, "fingerprint-uploads", "bin"), data))
        inputs = [{"input_key": k, "filename": (n or f"file-{i}")[:255]} for i, (k, (_, n)) in
                  enumerate(zip(keys, files))]
        return rt.jobs.submit(identity, PROCESS_KIND, {"inputs": inputs, "options": options})
    except Exception:
        for k in keys:
            if k:
                rt.blobs.delete(k)
        raise


def register_jobs(rt: ServiceRuntime) -> None:
    register_normalize_job(rt, normalize_print, mode="gray")

    @rt.jobs.handler(PROCESS_KIND)
    def process_job(ctx: JobContext) -> dict[str, Any]:
        inputs = ctx.params["inputs"]
        opts = ctx.params.get("options") or {}
        items = []
        with rt.sessions() as s:  # a retried job keeps what an earlier attempt finished
            done = {r.filename: r for r in s.scalars(select(FingerprintOutput).where(
                FingerprintOutput.job_id == ctx.id, FingerprintOutput.owner_id == ctx.owner_id))}
        for i, item in enumerate(inputs):
            name, key = item["filename"], item["input_key"]
            entry: dict[str, Any] = {"index": i, "filename": name}
            try:
                if name in done and (key is None or not rt.blobs.exists(key)):
                    out = done[name]
                    entry.update(status="succeeded", output=output_dict(rt, out))
                elif key is None:
                    raise Unprocessable("the uploaded file is empty", code="empty_file")
                elif not rt.blobs.exists(key):
                    raise BioError("the uploaded file is no longer available", code="input_missing", status_code=410)
                else:
                    data = rt.blobs.get(key)
                    if opts.get("subject"):
                        res = enroll_image(rt, ctx.owner_id, data, name, opts["subject"], int(opts.get("finger", 0)),
                                           None, opts.get("steps"), opts.get("enhancement"),
                                           int(opts.get("dpi", 500)), ctx.id)
                        out_row = get_output(rt, Identity(ctx.owner_id, "user"), res["output_id"])
                        entry.update(status="succeeded", output=output_dict(rt, out_row), template=res["template"])
                    else:
                        out_row, _ = process_bytes(rt, ctx.owner_id, data, name, steps=opts.get("steps"),
                                                   preset=opts.get("enhancement"), dpi=int(opts.get("dpi", 500)),
                                                   job_id=ctx.id)
                        entry.update(status="succeeded", output=output_dict(rt, out_row))
            except BioError as exc:
                entry.update(status="failed", error=exc.to_dict())
            except Exception as exc:
                log.exception("file %s of job %s failed", name, ctx.id)
                entry.update(status="failed", error={"code": "internal_error", "message": type(exc).__name__})
            if key:
                rt.blobs.delete(key)
            items.append(entry)
            ctx.progress((i + 1) / len(inputs))
        ok = sum(1 for e in items if e["status"] == "succeeded")
        return {"total": len(items), "succeeded": ok, "failed": len(items) - ok, "items": items,
                "outputs_url": f"{rt.prefix}/outputs?job_id={ctx.id}"}
