"""Audit trail: chained, keyed, tamper-evident entries on SQLite and PostgreSQL, the API and the CLI."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from bio_gateway.audit import store as store_mod
from bio_gateway.audit.cli import run as audit_run
from bio_gateway.audit.models import AuditEntry
from bio_gateway.audit.store import AuditFilter, AuditLog, Record
from bio_gateway.settings import GatewaySettings
from bio_shared.db import migrate, session_factory, utcnow
from bio_testing.gateway import make_admin, user

KEY = b"k" * 32


def _log(url: str) -> AuditLog:
    migrate("bio_gateway", url)
    return AuditLog(session_factory(url), KEY)


@pytest.fixture(params=["sqlite", "postgresql"])
def audit(request, tmp_path: Path) -> AuditLog:
    if request.param == "sqlite":
        return _log(f"sqlite:///{tmp_path / 'audit.db'}")
    return _log(request.getfixturevalue("pg_url").replace("postgresql://", "postgresql+psycopg://"))


def _rec(account: str, action: str = "fingerprint.identify", **resources) -> Record:
    return Record(action=action, method="POST", path="/api/v1/fingerprint/identify", resources=resources,
                  account_id=account, credential="api_key:abc", status=200, request_id="rid")


def test_chain_links_and_verifies(audit: AuditLog) -> None:
    for i in range(5):
        audit.append(_rec("acc1", template_id=f"t{i}"))
    audit.append(_rec("acc2"))
    checked, broken = audit.verify()
    assert (checked, broken) == (6, None)
    rows, total = audit.query(AuditFilter(account_id="acc1"), 10, 0)
    assert total == 5 and [r.seq for r in rows] == [5, 4, 3, 2, 1]
    assert rows[1].prev_hash == rows[2].hash  # each entry carries the previous one's hash


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "truncate_end"])
def test_tampering_names_the_first_broken_entry(audit: AuditLog, tamper: str) -> None:
    entries = [audit.append(_rec("acc1", template_id=f"t{i}")) for i in range(5)]
    with audit.sessions() as db, db.begin():
        if tamper == "edit":  # someone rewrites who was matched
            db.execute(update(AuditEntry).where(AuditEntry.id == entries[2].id).values(resources={"x": "y"}))
        elif tamper == "delete_middle":
            db.execute(delete(AuditEntry).where(AuditEntry.id == entries[1].id))
        else:
            db.execute(delete(AuditEntry).where(AuditEntry.id == entries[4].id))
    _, broken = audit.verify()
    assert broken is not None and broken.chain == "acc1"
    assert broken.seq == {"edit": 3, "delete_middle": 2, "truncate_end": 5}[tamper]
    if tamper == "edit":
        assert broken.entry_id == entries[2].id


def test_another_key_cannot_forge_a_consistent_chain(audit: AuditLog) -> None:
    audit.append(_rec("acc1"))
    assert AuditLog(audit.sessions, b"other key").verify()[1] is not None


def test_retention_purge_keeps_the_rest_verifiable(audit: AuditLog, monkeypatch) -> None:
    now = utcnow()
    monkeypatch.setattr(store_mod, "utcnow", lambda: now - timedelta(days=40))
    for _ in range(3):
        audit.append(_rec("acc1"))
    monkeypatch.setattr(store_mod, "utcnow", lambda: now)
    for _ in range(2):
        audit.append(_rec("acc1"))
    assert audit.purge(30) == 3
    assert audit.query(AuditFilter(account_id="acc1"), 10, 0)[1] == 2
    assert audit.verify() == (2, None)
    audit.append(_rec("acc1"))
    assert audit.verify() == (3, None)


def test_concurrent_replicas_keep_one_linear_chain(pg_url: str) -> None:
    url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    migrate("bio_gateway", url)
    replicas = [AuditLog(session_factory(url), KEY) for _ in range(4)]  # separate locks, like processes
    errors: list[BaseException] = []

    def work(log: AuditLog) -> None:
        try:
            for _ in range(15):
                log.append(_rec("shared"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert replicas[0].verify() == (60, None)


def test_api_records_operations_and_scopes_reads(gw) -> None:
    alice, bob = user(gw, "alice@example.org"), user(gw, "bob@example.org")
    ev = gw.post("/api/v1/faces/events", json={"name": "Gala"}, headers=alice)
    assert ev.status_code == 201, ev.text
    event_id = ev.json()["id"]
    patched = gw.patch(f"/api/v1/faces/events/{event_id}", json={"name": "Gala 2027"}, headers=alice)
    assert patched.status_code == 200, patched.text
    assert gw.delete(f"/api/v1/faces/events/{event_id}", headers=bob).status_code == 404  # refused: recorded
    gw.get("/api/v1/faces/events", headers=alice)  # reads of lists are not audited

    mine = gw.get("/api/v1/audit", headers=alice).json()
    actions = [e["action"] for e in mine["items"]]
    assert actions == ["faces.event_update", "faces.event_create"] and mine["total"] == 2
    create = mine["items"][1]
    assert create["resources"]["answer.id"] == [event_id] and create["outcome"] == "ok"
    assert create["credential"].startswith("jwt:") and create["request_id"]
    assert mine["items"][0]["resources"]["event_id"] == event_id
    bobs = gw.get("/api/v1/audit", headers=bob).json()["items"]
    assert [(e["action"], e["outcome"], e["status"]) for e in bobs] == [("faces.event_delete", "refused", 404)]
    assert gw.get(f"/api/v1/audit?account_id={mine['items'][0]['account_id']}", headers=bob).status_code == 403
    assert gw.get(f"/api/v1/audit?resource={event_id}", headers=alice).json()["total"] == 2

    admin = make_admin(gw)
    everyone = gw.get("/api/v1/audit?action=faces.event_create", headers=admin).json()
    assert everyone["total"] == 1
    lines = gw.get("/api/v1/audit/export", headers=admin).text.splitlines()
    assert [json.loads(x)["action"] for x in lines][:3] == ["faces.event_create", "faces.event_update",
                                                            "faces.event_delete"]
    assert gw.get("/api/v1/audit", headers={}).status_code == 401


def test_cli_verify_reports_intact_and_broken(tmp_path: Path, capsys) -> None:
    settings = GatewaySettings(env="test", var_dir=tmp_path, log_json=False)
    log = _log(settings.database_url)
    log.key = settings.audit_secret.encode()
    first = log.append(_rec("acc1"))
    log.append(_rec("acc1"))

    class Args:
        audit_command = "verify"

    audit_run(Args(), settings)
    assert "intact: 2 entries" in capsys.readouterr().out
    with log.sessions() as db, db.begin():
        db.execute(update(AuditEntry).where(AuditEntry.id == first.id).values(status=500))
    with pytest.raises(SystemExit) as exc:
        audit_run(Args(), settings)
    assert exc.value.code == 1
    assert f"entry id {first.id}" in capsys.readouterr().out
