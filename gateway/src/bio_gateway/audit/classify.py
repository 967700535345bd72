"""Which requests are audited, under which action name, with which resource ids from the path.

Everything biometric (enroll, identify, verify, import, export, delete, confirm) and every admin or
credential action is listed; reads of lists and job status are not. Path ids become resource ids;
ids in the JSON answer (who matched whom) are added by the middleware.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = r"[^/]+"


@dataclass(frozen=True)
class Rule:
    method: str
    pattern: re.Pattern[str]
    action: str


def _rule(method: str, path: str, action: str) -> Rule:
    regex = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{_ID})", path)
    return Rule(method, re.compile(f"^{regex}/?$"), action)


_FP, _FACES, _EV = "/api/v1/fingerprint", "/api/v1/faces", "/api/v1/faces/events/{event_id}"
_PERSON = _EV + "/people/{person_id}"

RULES: tuple[Rule, ...] = (
    # fingerprint
    _rule("POST", f"{_FP}/enroll", "fingerprint.enroll"),
    _rule("POST", f"{_FP}/extract", "fingerprint.extract"),
    _rule("POST", f"{_FP}/jobs/process", "fingerprint.batch_process"),
    _rule("POST", f"{_FP}/verify", "fingerprint.verify"),
    _rule("POST", f"{_FP}/identify", "fingerprint.identify"),
    _rule("POST", f"{_FP}/templates/import", "fingerprint.template_import"),
    _rule("GET", f"{_FP}/templates/{{template_id}}/export", "fingerprint.template_export"),
    _rule("GET", f"{_FP}/outputs/{{output_id}}/template", "fingerprint.template_export"),
    _rule("DELETE", f"{_FP}/templates/{{template_id}}", "fingerprint.template_delete"),
    _rule("DELETE", f"{_FP}/outputs/{{output_id}}", "fingerprint.output_delete"),
    _rule("POST", f"{_FP}/admin/cleanup", "fingerprint.admin_cleanup"),
    # face recognition
    _rule("POST", f"{_FACES}/events", "faces.event_create"),
    _rule("PATCH", _EV, "faces.event_update"),
    _rule("DELETE", _EV, "faces.event_delete"),
    _rule("POST", f"{_EV}/reset", "faces.event_reset"),
    _rule("POST", f"{_EV}/people", "faces.person_create"),
    _rule("PATCH", _PERSON, "faces.person_update"),
    _rule("DELETE", _PERSON, "faces.person_delete"),
    _rule("POST", f"{_PERSON}/images", "faces.enroll"),
    _rule("DELETE", f"{_PERSON}/images/{{image_id}}", "faces.image_delete"),
    _rule("POST", f"{_PERSON}/verify", "faces.verify"),
    _rule("POST", f"{_EV}/identify", "faces.identify"),
    _rule("POST", f"{_EV}/enroll-zip", "faces.enroll_bulk"),
    _rule("POST", f"{_EV}/unknowns/{{unknown_id}}/confirm", "faces.unknown_confirm"),
    _rule("DELETE", f"{_EV}/unknowns/{{unknown_id}}", "faces.unknown_delete"),
    # face verification and contour masks
    _rule("POST", "/api/v1/verify/jobs/verify", "face_verify.verify"),
    _rule("POST", "/api/v1/contours/jobs/contours", "contours.extract"),
    _rule("POST", "/api/v1/contours/extract", "contours.extract"),
    # data subjects
    _rule("GET", "/api/v1/subjects/{subject_ref}/export", "subject.export"),
    _rule("DELETE", "/api/v1/subjects/{subject_ref}", "subject.erase"),
    # credentials and administration
    _rule("POST", "/api/v1/auth/api-keys", "credential.api_key_create"),
    _rule("DELETE", "/api/v1/auth/api-keys/{key_id}", "credential.api_key_revoke"),
    _rule("GET", "/api/v1/admin/accounts", "admin.account_list"),
    _rule("PATCH", "/api/v1/admin/accounts/{account_id}", "admin.account_update"),
    _rule("DELETE", "/api/v1/admin/accounts/{account_id}", "admin.account_delete"),
    _rule("GET", "/api/v1/audit/export", "admin.audit_export"),
)


def classify(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """(action, path ids) when the request is audited, else None."""
    for rule in RULES:
        if rule.method == method:
            m = rule.pattern.match(path)
            if m:
                return rule.action, dict(m.groupdict())
    return None
