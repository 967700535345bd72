"""The hash chain: canonical payload of an entry, its keyed hash, and verification of a sequence."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = ("chain", "seq", "at", "account_id", "credential", "action", "method", "path", "resources",
          "status", "outcome", "request_id")


def payload(fields: dict[str, Any]) -> bytes:
    """Canonical JSON of the chained fields (sorted keys, UTC ISO time), so any edit changes the hash."""
    out = {k: fields[k] for k in FIELDS}
    at = out["at"]
    if isinstance(at, datetime):
        out["at"] = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(key: bytes, prev_hash: str, fields: dict[str, Any]) -> str:
    # Keyed (HMAC): someone who can write the database but does not hold the audit key cannot
    # recompute a consistent chain after editing or deleting a row.
    return hmac.new(key, prev_hash.encode() + payload(fields), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Break:
    chain: str
    seq: int
    entry_id: int | None
    reason: str


def verify_chain(key: bytes, chain: str, rows: Iterable[Any], *, anchor_seq: int, anchor_hash: str,
                 head_seq: int, head_hash: str) -> Break | None:
    """First break in one chain's rows (ordered by seq), or None. Checks continuity of seq, each row's
    prev_hash link and recomputed hash, and that the last row is the recorded head (no truncation)."""
    prev, expected = anchor_hash, anchor_seq + 1
    last_seq = anchor_seq
    for row in rows:
        if row.seq != expected:
            return Break(chain, expected, getattr(row, "id", None), f"entry {expected} is missing")
        if row.prev_hash != prev:
            return Break(chain, row.seq, row.id, "link to the previous entry does not match")
        if not hmac.compare_digest(entry_hash(key, prev, _fields(row)), row.hash):
            return Break(chain, row.seq, row.id, "entry content does not match its hash")
        prev, expected, last_seq = row.hash, expected + 1, row.seq
    if last_seq != head_seq or prev != head_hash:
        return Break(chain, last_seq + 1, None, f"chain ends at {last_seq} but its head says {head_seq}")
    return None


def _fields(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in FIELDS}
