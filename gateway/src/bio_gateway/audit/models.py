"""Audit tables: append-only entries chained per account, and one head row per chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bio_gateway.models import Base
from bio_shared.db import UTCDateTime


class AuditEntry(Base):
    """One recorded operation. ``hash`` = HMAC(key, prev_hash + canonical payload) of this row."""

    __tablename__ = "gateway_audit_entries"
    __table_args__ = (UniqueConstraint("chain", "seq", name="uq_gateway_audit_entries_chain_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    chain: Mapped[str] = mapped_column(String(32), index=True)  # the acting account
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    credential: Mapped[str] = mapped_column(String(64))  # "jwt:<sha256 prefix>" or "api_key:<prefix>"
    action: Mapped[str] = mapped_column(String(64), index=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(512))
    resources: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The end of one chain. ``anchor_*`` is where verification starts once old entries were purged."""

    __tablename__ = "gateway_audit_heads"

    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
    anchor_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    anchor_hash: Mapped[str] = mapped_column(String(64))
