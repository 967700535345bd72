"""How a delivery is signed, and how a receiver checks it.

Header ``Bio-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``. A receiver
recomputes the HMAC over the raw body with its endpoint secret, compares in constant time and refuses
timestamps older than a few minutes (replays)::

    import hashlib, hmac, time

    def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> bool:
        parts = dict(p.split("=", 1) for p in header.split(","))
        expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) <= tolerance_s
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Bio-Signature"


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: bytes, body: bytes, header: str, tolerance_s: int = 300, now: float | None = None) -> bool:
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
        expected = hmac.new(secret, parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    except (KeyError, ValueError):
        return False
    fresh = abs((time.time() if now is None else now) - t) <= tolerance_s
    return hmac.compare_digest(expected, parts["v1"]) and fresh
