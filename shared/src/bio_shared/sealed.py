"""Encryption at rest wired into storage: the KEKs from settings, and a column type that seals.

``SealedBytes("fingerprint_templates.minutiae")`` stores a LargeBinary column sealed under the
process-wide envelope (bio_shared.crypto); reads open it in memory only, so matching caches see
plaintext while no database row holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import LargeBinary
from sqlalchemy.types import TypeDecorator

from bio_shared import crypto
from bio_shared.crypto import ENVELOPE, Envelope, LocalKek
from bio_shared.settings import DEV_ENVS, CommonSettings


class SealedBytes(TypeDecorator[bytes]):
    impl = LargeBinary
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context
        self._aad = b"column:" + context.encode()

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        return None if value is None else ENVELOPE.seal(bytes(value), self._aad)

    def process_result_value(self, value: Any, dialect: Any) -> bytes | None:
        return None if value is None else ENVELOPE.open(bytes(value), self._aad)


def column_context(col: SealedBytes) -> bytes:
    return col._aad


def blob_context(key: str) -> bytes:
    return b"blob:" + key.encode()


def key_file_path(settings: CommonSettings) -> Path:
    return Path(settings.kek_file) if settings.kek_file else Path(settings.var_dir) / "secrets" / "kek.json"


def load_keks(settings: CommonSettings) -> tuple[list[LocalKek], str]:
    """KEKs from BIO_KEK (``id:base64,...``, last is current), else from the key file. In development
    a key file under var/secrets is created on first use; elsewhere a missing key refuses to start."""
    if settings.kek:
        keks = crypto.parse_keks(settings.kek)
        return keks, keks[-1].key_id
    path = key_file_path(settings)
    if not path.exists():
        if settings.kek_file or settings.env not in DEV_ENVS:
            raise ValueError("set BIO_KEK or BIO_KEK_FILE: templates, embeddings and images are encrypted at rest")
        crypto.ensure_key_file(path)
    return crypto.load_key_file(path)


def envelope_for(settings: CommonSettings) -> Envelope:
    """Load this process's KEKs into the process-wide ring and return the envelope. In key-file mode
    the file is re-read when it changes (a rotation's new KEK is picked up within seconds)."""
    keks, current = load_keks(settings)
    env = crypto.configure(keks, current)
    if not settings.kek:
        path = key_file_path(settings)
        seen = [path.stat().st_mtime_ns]

        def refresh() -> None:
            try:
                mtime = path.stat().st_mtime_ns
                if mtime != seen[0]:
                    seen[0] = mtime
                    crypto.configure(*crypto.load_key_file(path))
            except (OSError, ValueError, KeyError):
                pass  # keep the keys we have; the next check tries again

        env.ring.refresh = refresh
    return env
