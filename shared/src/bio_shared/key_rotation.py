"""Key rotation without downtime: every sealed column and blob of every installed service re-wrapped
under the current KEK (or re-encrypted), row by row in small transactions.

Readers keep working throughout: the ring still holds the old KEKs, and a value is either in its old
or its new sealed form, both of which open. A row changed meanwhile is left alone (compare-and-set)
and picked up by the next run.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import LargeBinary, MetaData, Table, select, type_coerce, update
from sqlalchemy.engine import Engine

from bio_shared.crypto import Envelope, is_sealed
from bio_shared.db import get_engine
from bio_shared.sealed import SealedBytes, blob_context, column_context
from bio_shared.services import service_packages
from bio_shared.settings import CommonSettings
from bio_shared.storage import BlobStore

_BATCH = 200


@dataclass
class RotationReport:
    rows: dict[str, int] = field(default_factory=dict)  # "table.column" -> values re-written
    blobs: dict[str, int] = field(default_factory=dict)  # service -> blobs re-written
    legacy_sealed: int = 0  # plaintext values from before encryption, now sealed
    key_ids_in_use: set[str] = field(default_factory=set)


def sealed_columns(metadata: MetaData) -> list[tuple[Table, str, SealedBytes]]:
    out: list[tuple[Table, str, SealedBytes]] = []
    for table in metadata.tables.values():
        for col in table.columns:
            if isinstance(col.type, SealedBytes):
                out.append((table, col.name, col.type))
    return out


def _rotate_column(engine: Engine, env: Envelope, table: Table, column: str, ctype: SealedBytes,
                   reencrypt: bool, report: RotationReport) -> None:
    pk = next(iter(table.primary_key.columns))
    raw = type_coerce(table.c[column], LargeBinary)  # the stored bytes, not the opened value
    aad = column_context(ctype)
    last = None
    name = f"{table.name}.{column}"
    report.rows.setdefault(name, 0)
    while True:
        with engine.begin() as conn:
            stmt = select(pk, raw.label("v")).order_by(pk).limit(_BATCH)
            if last is not None:
                stmt = stmt.where(pk > last)
            rows = conn.execute(stmt).all()
            for key, value in rows:
                if value is None:
                    continue
                value = bytes(value)
                new = env.rewrap(value, aad, reencrypt=reencrypt)
                report.key_ids_in_use.add(env.key_id_of(new) or "")
                if new != value:
                    report.legacy_sealed += not is_sealed(value)
                    res = conn.execute(update(table).where(pk == key, raw == value).values({column: type_coerce(
                        new, LargeBinary)}))
                    report.rows[name] += getattr(res, "rowcount", 0) or 0
        if len(rows) < _BATCH:
            return
        last = rows[-1][0]


def _rotate_blobs(store: BlobStore, env: Envelope, reencrypt: bool) -> tuple[int, int, set[str]]:
    done = legacy = 0
    kids: set[str] = set()
    for path in sorted(store.root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        key = path.relative_to(store.root).as_posix()
        value = store.get_raw(key)
        new = env.rewrap(value, blob_context(key), reencrypt=reencrypt)
        kids.add(env.key_id_of(new) or "")
        if new != value:
            legacy += not is_sealed(value)
            store.put_raw(key, new)
            done += 1
    return done, legacy, kids


def rotate(settings: CommonSettings, env: Envelope, *, reencrypt: bool = False) -> RotationReport:
    """Re-wrap (or re-encrypt) every sealed value of every installed service under the current KEK."""
    report = RotationReport()
    for name, package in service_packages().items():
        models = importlib.import_module(f"{package}.models")
        url = os.environ.get(f"BIO_{name.upper()}_DATABASE_URL") or settings.database_url
        engine = get_engine(url)
        for table, column, ctype in sealed_columns(models.Base.metadata):
            _rotate_column(engine, env, table, column, ctype, reencrypt, report)
        blob_root = Path(settings.blob_dir or Path(settings.var_dir) / "blobs") / name
        if blob_root.is_dir():
            done, legacy, kids = _rotate_blobs(BlobStore(blob_root), env, reencrypt)
            report.blobs[name] = done
            report.legacy_sealed += legacy
            report.key_ids_in_use |= kids
    report.key_ids_in_use.discard("")
    return report
