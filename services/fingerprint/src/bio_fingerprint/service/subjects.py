"""The fingerprint subject of a data-subject request: its templates (ISO 19794-2 and JSON) and the
enhanced images of the outputs they came from."""

from __future__ import annotations

import json

from sqlalchemy import delete, select

from bio_fingerprint.models import FingerprintOutput, FingerprintTemplate
from bio_fingerprint.service.codec import template_of
from bio_shared.runtime import ServiceRuntime
from bio_shared.subjects import SubjectExport


class FingerprintSubjects:
    def __init__(self, rt: ServiceRuntime) -> None:
        self.rt = rt

    def _rows(self, owner_id: str, ref: str) -> tuple[list[FingerprintTemplate], list[FingerprintOutput]]:
        with self.rt.sessions() as db:
            templates = list(db.scalars(select(FingerprintTemplate).where(
                FingerprintTemplate.owner_id == owner_id, FingerprintTemplate.subject == ref)
                .order_by(FingerprintTemplate.finger, FingerprintTemplate.impression)))
            ids = [t.output_id for t in templates if t.output_id]
            outputs = list(db.scalars(select(FingerprintOutput).where(
                FingerprintOutput.owner_id == owner_id, FingerprintOutput.id.in_(ids)))) if ids else []
        return templates, outputs

    def export(self, owner_id: str, ref: str) -> SubjectExport:
        templates, outputs = self._rows(owner_id, ref)
        out = SubjectExport()
        for row in templates:
            t = template_of(row)
            stem = f"templates/finger{row.finger}_impression{row.impression}_{row.id}"
            out.files[f"{stem}.iso"] = t.to_iso()
            out.files[f"{stem}.json"] = json.dumps(t.to_json(), indent=1).encode()
            out.records.append({"type": "template", "id": row.id, "subject": row.subject, "finger": row.finger,
                                "impression": row.impression, "algorithm": row.algorithm,
                                "algorithm_version": row.algorithm_version, "quality": row.quality,
                                "minutiae_count": row.minutiae_count, "source": row.source,
                                "created_at": row.created_at.isoformat()})
        for o in outputs:
            if self.rt.blobs.exists(o.image_key):
                out.files[f"images/{o.id}.png"] = self.rt.blobs.get(o.image_key)
            out.records.append({"type": "output", "id": o.id, "template_id": o.template_id, "quality": o.quality,
                                "filename": o.filename, "created_at": o.created_at.isoformat()})
        return out

    def erase(self, owner_id: str, ref: str) -> dict[str, int]:
        templates, outputs = self._rows(owner_id, ref)
        with self.rt.sessions() as db, db.begin():
            n_t = db.execute(delete(FingerprintTemplate).where(
                FingerprintTemplate.owner_id == owner_id, FingerprintTemplate.subject == ref))
            n_o = db.execute(delete(FingerprintOutput).where(
                FingerprintOutput.id.in_([o.id for o in outputs]))) if outputs else None
        blobs = sum(bool(self.rt.blobs.delete(o.image_key)) for o in outputs)
        return {"templates": _count(n_t), "outputs": _count(n_o), "blobs": blobs}


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
