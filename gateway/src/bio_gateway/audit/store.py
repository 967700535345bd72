"""AuditLog: append to a chain, query, export, purge old entries and verify every chain."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bio_gateway.audit.chain import GENESIS, Break, entry_hash, verify_chain
from bio_gateway.audit.models import AuditEntry, AuditHead
from bio_shared.db import utcnow


@dataclass
class Record:
    """What one request contributes to its entry; filled in as the request is handled."""

    action: str
    method: str
    path: str
    resources: dict[str, Any] = field(default_factory=dict)
    account_id: str | None = None
    credential: str = ""
    status: int = 0
    request_id: str = ""


@dataclass(frozen=True)
class AuditFilter:
    account_id: str | None = None
    action: str | None = None
    resource: str | None = None  # any resource id mentioned by the entry
    since: datetime | None = None
    until: datetime | None = None


def outcome_of(status: int) -> str:
    return "ok" if status < 400 else "refused" if status < 500 else "error"


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session], key: bytes) -> None:
        self.sessions = sessions
        self.key = key
        # SQLite has no row locks; one writer per process keeps its chains linear there. On
        # PostgreSQL the head row's FOR UPDATE lock serialises appends across replicas.
        self._lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------------
    def append(self, rec: Record) -> AuditEntry:
        if not rec.account_id:
            raise ValueError("an audit entry needs the acting account")
        for attempt in range(5):
            try:
                with self._lock, self.sessions() as db, db.begin():
                    return self._append(db, rec)
            except IntegrityError:  # two replicas created the same new chain at once: retry
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _append(self, db: Session, rec: Record) -> AuditEntry:
        chain = rec.account_id or ""
        head = db.scalar(select(AuditHead).where(AuditHead.chain == chain).with_for_update())
        if head is None:
            head = AuditHead(chain=chain, seq=0, hash=GENESIS, anchor_seq=0, anchor_hash=GENESIS)
            db.add(head)
            db.flush()
        fields = {"chain": chain, "seq": head.seq + 1, "at": utcnow(), "account_id": chain,
                  "credential": rec.credential[:64], "action": rec.action, "method": rec.method,
                  "path": rec.path[:512], "resources": rec.resources, "status": rec.status,
                  "outcome": outcome_of(rec.status), "request_id": (rec.request_id or "")[:64]}
        entry = AuditEntry(**fields, prev_hash=head.hash, hash=entry_hash(self.key, head.hash, fields))
        db.add(entry)
        head.seq, head.hash = entry.seq, entry.hash
        db.flush()
        return entry

    # -- reading -------------------------------------------------------------------------------
    def _where(self, f: AuditFilter) -> list[Any]:
        cond: list[Any] = []
        if f.account_id:
            cond.append(AuditEntry.chain == f.account_id)
        if f.action:
            cond.append(AuditEntry.action == f.action)
        if f.since:
            cond.append(AuditEntry.at >= f.since)
        if f.until:
            cond.append(AuditEntry.at < f.until)
        return cond

    def query(self, f: AuditFilter, limit: int, offset: int) -> tuple[list[AuditEntry], int]:
        with self.sessions() as db:
            stmt = select(AuditEntry).where(*self._where(f)).order_by(AuditEntry.id.desc())
            if f.resource is None:
                total = db.scalar(select(func.count()).select_from(AuditEntry).where(*self._where(f))) or 0
                return list(db.scalars(stmt.limit(limit).offset(offset))), total
            # Resource ids live in a JSON column whose operators differ per backend: filter here.
            rows = [r for r in db.scalars(stmt) if f.resource in _resource_ids(r.resources)]
            return rows[offset:offset + limit], len(rows)

    def export(self, f: AuditFilter) -> Iterator[str]:
        """JSON lines, oldest first, read in pages so a long trail never sits in memory at once."""
        last_id = 0
        while True:
            with self.sessions() as db:
                rows = list(db.scalars(select(AuditEntry).where(*self._where(f), AuditEntry.id > last_id)
                                       .order_by(AuditEntry.id).limit(500)))
            if not rows:
                return
            for r in rows:
                if f.resource is None or f.resource in _resource_ids(r.resources):
                    yield json.dumps(entry_dict(r), sort_keys=True) + "\n"
            last_id = rows[-1].id

    # -- retention and verification ------------------------------------------------------------
    def purge(self, older_than_days: float) -> int:
        """Delete entries older than the retention; each chain's head keeps the last deleted hash as
        its anchor, so the rest still verifies."""
        cutoff = utcnow() - timedelta(days=older_than_days)
        removed = 0
        with self._lock, self.sessions() as db, db.begin():
            for head in db.scalars(select(AuditHead).with_for_update()):
                last = db.scalars(select(AuditEntry).where(AuditEntry.chain == head.chain, AuditEntry.at < cutoff)
                                  .order_by(AuditEntry.seq.desc()).limit(1)).first()
                if last is None:
                    continue
                res = db.execute(delete(AuditEntry).where(AuditEntry.chain == head.chain,
                                                          AuditEntry.seq <= last.seq))
                removed += getattr(res, "rowcount", 0) or 0
                head.anchor_seq, head.anchor_hash = last.seq, last.hash
        return removed

    def verify(self) -> tuple[int, Break | None]:
        """(entries checked, first break or None) over every chain."""
        checked = 0
        with self.sessions() as db:
            heads = list(db.scalars(select(AuditHead).order_by(AuditHead.chain)))
            chains = {h.chain for h in heads}
            orphan = db.scalar(select(AuditEntry.chain).where(AuditEntry.chain.not_in(chains)).limit(1)) \
                if chains else db.scalar(select(AuditEntry.chain).limit(1))
            if orphan is not None:
                return checked, Break(orphan, 0, None, "entries without a chain head")
            for head in heads:
                rows = list(db.scalars(select(AuditEntry).where(AuditEntry.chain == head.chain)
                                       .order_by(AuditEntry.seq)))
                checked += len(rows)
                broken = verify_chain(self.key, head.chain, rows, anchor_seq=head.anchor_seq,
                                      anchor_hash=head.anchor_hash, head_seq=head.seq, head_hash=head.hash)
                if broken:
                    return checked, broken
        return checked, None


def _resource_ids(resources: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for v in resources.values():
        if isinstance(v, list):
            out.update(str(x) for x in v)
        else:
            out.add(str(v))
    return out


def entry_dict(r: AuditEntry) -> dict[str, Any]:
    return {"id": r.id, "seq": r.seq, "at": r.at.isoformat(), "account_id": r.account_id,
            "credential": r.credential, "action": r.action, "method": r.method, "path": r.path,
            "resources": r.resources, "status": r.status, "outcome": r.outcome, "request_id": r.request_id,
            "prev_hash": r.prev_hash, "hash": r.hash}
