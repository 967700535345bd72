"""The person of a data-subject request: every person of the account whose id or name is the ref,
across events, with their enrolled photos (when kept) and embedding metadata (never the vectors)."""

from __future__ import annotations

from sqlalchemy import or_, select

from bio_face_recognition.models import FaceEmbedding, FaceEvent, Person
from bio_face_recognition.service.people import delete_person
from bio_shared.runtime import ServiceRuntime
from bio_shared.subjects import SubjectExport


class FaceSubjects:
    def __init__(self, rt: ServiceRuntime) -> None:
        self.rt = rt

    def _people(self, owner_id: str, ref: str) -> list[Person]:
        with self.rt.sessions() as db:
            return list(db.scalars(select(Person).where(Person.owner_id == owner_id,
                                                        or_(Person.id == ref, Person.name == ref))
                                   .order_by(Person.created_at)))

    def export(self, owner_id: str, ref: str) -> SubjectExport:
        out = SubjectExport()
        for person in self._people(owner_id, ref):
            with self.rt.sessions() as db:
                event = db.get(FaceEvent, person.event_id)
                embeddings = list(db.scalars(select(FaceEmbedding).where(FaceEmbedding.person_id == person.id)
                                             .order_by(FaceEmbedding.created_at)))
            out.records.append({"type": "person", "id": person.id, "name": person.name, "event_id": person.event_id,
                                "event_name": event.name if event else None,
                                "created_at": person.created_at.isoformat()})
            for e in embeddings:
                out.records.append({"type": "embedding", "id": e.id, "person_id": person.id, "model": e.model,
                                    "model_version": e.model_version, "box": e.box, "quality": e.quality,
                                    "source": e.source, "image_kept": bool(e.image_key),
                                    "created_at": e.created_at.isoformat()})
                if e.image_key and self.rt.blobs.exists(e.image_key):
                    ext = e.image_key.rsplit(".", 1)[-1]
                    out.files[f"people/{person.id}/{e.id}.{ext}"] = self.rt.blobs.get(e.image_key)
        return out

    def erase(self, owner_id: str, ref: str) -> dict[str, int]:
        total: dict[str, int] = {"people": 0, "images": 0, "blobs": 0}
        for person in self._people(owner_id, ref):
            # the people use case: rows, blobs and the gallery version the matching caches check
            counts = delete_person(self.rt, owner_id, person.event_id, person.id)
            for k in total:
                total[k] += int(counts.get(k, 0))
        return total
