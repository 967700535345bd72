"""The events an endpoint can subscribe to, and those read off a proxied answer.

Job events come from the services' jobs tables (polled); the others are read from the answers of
audited requests as they pass the gateway: ids only, never images or templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bio_gateway.audit.store import Record

EVENT_TYPES = ("job.succeeded", "job.failed", "person.enrolled", "unknown_face.stored", "identify.no_match",
               "ping")


@dataclass(frozen=True)
class Event:
    id: str  # stable: the same occurrence always has the same id (receivers deduplicate on it)
    type: str
    account_id: str
    data: dict[str, Any]


def from_answer(rec: Record, body: Any) -> list[Event]:
    """Events of one successful audited request."""
    account = rec.account_id
    if not account or not 200 <= rec.status < 300 or not isinstance(body, dict):
        return []
    base = f"{rec.request_id or rec.path}"
    ids = {k: v for k, v in rec.resources.items() if not k.startswith("answer.")}
    out: list[Event] = []
    if rec.action in ("faces.person_create", "faces.enroll"):
        person = ids.get("person_id") or body.get("id")
        out.append(Event(f"{base}:person.enrolled", "person.enrolled", account,
                         {"service": "faces", "event_id": ids.get("event_id"), "person_id": person}))
    elif rec.action == "fingerprint.enroll":
        items = body.get("items") or []
        templates = [i.get("template", {}).get("id") for i in items if isinstance(i, dict)]
        subject = next((i.get("template", {}).get("subject") for i in items if isinstance(i, dict)), None)
        out.append(Event(f"{base}:person.enrolled", "person.enrolled", account,
                         {"service": "fingerprint", "subject": subject, "template_ids": templates}))
    elif rec.action == "faces.identify":
        out += _face_identify(account, base, ids, body)
    elif rec.action == "fingerprint.identify" and not body.get("candidates"):
        out.append(Event(f"{base}:identify.no_match", "identify.no_match", account,
                         {"service": "fingerprint", "searched": body.get("searched")}))
    return out


def _face_identify(account: str, base: str, ids: dict[str, Any], body: dict[str, Any]) -> list[Event]:
    out: list[Event] = []
    faces = [f for f in body.get("faces") or [] if isinstance(f, dict)]
    for i, face in enumerate(faces):
        if face.get("passed") is False:
            out.append(Event(f"{base}:identify.no_match:{i}", "identify.no_match", account,
                             {"service": "faces", "event_id": ids.get("event_id"), "face_index": i}))
        if face.get("unknown_id"):
            out.append(Event(f"{base}:unknown_face.stored:{face['unknown_id']}", "unknown_face.stored",
                             account, {"service": "faces", "event_id": ids.get("event_id"),
                                              "unknown_id": face["unknown_id"]}))
    return out


def from_job(service: str, job: dict[str, Any]) -> Event:
    status = job["status"]
    return Event(f"{service}:job:{job['id']}:{status}", f"job.{status}", job["owner_id"],
                 {"service": service, "job_id": job["id"], "kind": job["kind"], "error_code": job.get("error_code"),
                  "finished_at": job["finished_at"]})
