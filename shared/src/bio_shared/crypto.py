"""Envelope encryption at rest: AES-256-GCM with a fresh data key per record, wrapped by a
key-encryption key (KEK) named by its id.

Sealed form (the key id travels with every row and blob)::

    MAGIC | u8 len(kek_id) | kek_id | u16 len(wrapped) | wrapped data key | 12-byte nonce | ciphertext+tag

The context (e.g. the blob key, or table.column) is authenticated data: a sealed value copied to
another place does not open there. KEKs come from settings or a key file (``LocalKek``); a KMS plugs
in behind the same ``KeyEncryptionKey`` protocol. Rotation adds a new current KEK and re-wraps the
data keys (cheap) or re-encrypts; old KEKs stay readable until rotation is done.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"BIOENC1\x00"
_NONCE = 12


class CryptoError(Exception):
    """A sealed value that cannot be opened: unknown KEK, wrong context or tampered bytes."""


class KeyEncryptionKey(Protocol):
    @property
    def key_id(self) -> str: ...

    def wrap(self, dek: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


@dataclass(frozen=True)
class LocalKek:
    """A 256-bit KEK held by this process (from settings or a key file)."""

    key_id: str
    key: bytes = field(repr=False)

    def wrap(self, dek: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + AESGCM(self.key).encrypt(nonce, dek, b"bio-dek:" + self.key_id.encode())

    def unwrap(self, wrapped: bytes) -> bytes:
        return AESGCM(self.key).decrypt(wrapped[:_NONCE], wrapped[_NONCE:], b"bio-dek:" + self.key_id.encode())


class KeyRing:
    """KEKs by id and the current one (used to seal). Thread-safe."""

    def __init__(self, keks: list[KeyEncryptionKey] | None = None, current: str | None = None) -> None:
        self._keks: dict[str, KeyEncryptionKey] = {}
        self._current: str | None = None
        self._lock = threading.Lock()
        # Called (at most every refresh_s) before sealing, so a KEK added to the key file becomes
        # current in every running process without a restart.
        self.refresh: Callable[[], None] | None = None
        self.refresh_s = 10.0
        self._refreshed = 0.0
        for kek in keks or []:
            self.add(kek)
        if current is not None:
            self.set_current(current)

    def add(self, kek: KeyEncryptionKey, *, make_current: bool = False) -> None:
        with self._lock:
            self._keks[kek.key_id] = kek
            if make_current or self._current is None:
                self._current = kek.key_id

    def set_current(self, key_id: str) -> None:
        if key_id not in self._keks:
            raise KeyError(f"unknown key-encryption key {key_id!r}")
        self._current = key_id

    @property
    def current(self) -> KeyEncryptionKey:
        if self.refresh is not None and time.monotonic() - self._refreshed > self.refresh_s:
            self._refreshed = time.monotonic()
            self.refresh()
        if self._current is None:
            raise CryptoError("no key-encryption key configured")
        return self._keks[self._current]

    def get(self, key_id: str) -> KeyEncryptionKey:
        try:
            return self._keks[key_id]
        except KeyError:
            raise CryptoError(f"unknown key-encryption key {key_id!r}") from None

    def ids(self) -> list[str]:
        return sorted(self._keks)


def is_sealed(blob: bytes) -> bool:
    return blob[:len(MAGIC)] == MAGIC


def _split(blob: bytes) -> tuple[str, bytes, bytes, bytes]:
    if not is_sealed(blob):
        raise CryptoError("not a sealed value")
    try:
        pos = len(MAGIC)
        n = blob[pos]
        kid = blob[pos + 1:pos + 1 + n].decode("ascii")
        pos += 1 + n
        (m,) = struct.unpack(">H", blob[pos:pos + 2])
        wrapped = blob[pos + 2:pos + 2 + m]
        pos += 2 + m
        return kid, wrapped, blob[pos:pos + _NONCE], blob[pos + _NONCE:]
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise CryptoError("malformed sealed value") from exc


def _join(kid: str, wrapped: bytes, nonce: bytes, ct: bytes) -> bytes:
    k = kid.encode("ascii")
    return MAGIC + bytes([len(k)]) + k + struct.pack(">H", len(wrapped)) + wrapped + nonce + ct


class Envelope:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        kek = self.ring.current
        dek = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        return _join(kek.key_id, kek.wrap(dek), nonce, AESGCM(dek).encrypt(nonce, plaintext, context))

    def open(self, blob: bytes, context: bytes) -> bytes:
        """The plaintext. A value stored before encryption was enabled (no MAGIC) is returned as is;
        ``bio-platform rotate-keys`` seals those."""
        if not is_sealed(blob):
            return blob
        kid, wrapped, nonce, ct = _split(blob)
        try:
            dek = self.ring.get(kid).unwrap(wrapped)
            return AESGCM(dek).decrypt(nonce, ct, context)
        except CryptoError:
            raise
        except Exception as exc:  # InvalidTag: wrong context, wrong key or tampered bytes
            raise CryptoError(f"sealed value does not open under key {kid!r}") from exc

    def rewrap(self, blob: bytes, context: bytes, *, reencrypt: bool = False) -> bytes:
        """The same value under the current KEK: the data key re-wrapped (or, with reencrypt, a new
        data key and ciphertext). Plaintext legacy values are sealed."""
        if not is_sealed(blob) or reencrypt:
            return self.seal(self.open(blob, context), context)
        kid, wrapped, nonce, ct = _split(blob)
        kek = self.ring.current
        if kid == kek.key_id:
            return blob
        return _join(kek.key_id, kek.wrap(self.ring.get(kid).unwrap(wrapped)), nonce, ct)

    @staticmethod
    def key_id_of(blob: bytes) -> str | None:
        return _split(blob)[0] if is_sealed(blob) else None


# -- where KEKs come from ---------------------------------------------------------------------

def kek_id_for(key: bytes) -> str:
    return "k" + hashlib.sha256(b"bio-kek-id:" + key).hexdigest()[:12]


def parse_keks(spec: str) -> list[LocalKek]:
    """``id:base64key[,id:base64key...]`` (the last is current) or one bare base64 key."""
    out: list[LocalKek] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, b64 = part.rpartition(":")
        key = base64.b64decode(b64 if sep else part, validate=True)
        if len(key) != 32:
            raise ValueError("a key-encryption key is 32 bytes (base64 of 32 random bytes)")
        out.append(LocalKek(kid if sep else kek_id_for(key), key))
    return out


def load_key_file(path: Path) -> tuple[list[LocalKek], str]:
    """``{"current": id, "keys": {id: base64}}``."""
    doc = json.loads(Path(path).read_text())
    keks = [LocalKek(kid, base64.b64decode(b64, validate=True)) for kid, b64 in doc["keys"].items()]
    return keks, doc["current"]


def write_key_file(path: Path, keks: list[LocalKek], current: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    doc = {"current": current, "keys": {k.key_id: base64.b64encode(k.key).decode() for k in keks}}
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh)
    os.replace(tmp, path)


def ensure_key_file(path: Path) -> None:
    """Create a key file with one random KEK unless one exists. Several processes starting at once
    (the local launcher) may race here: the file is linked into place exclusively, so exactly one
    key wins and every process loads that one."""
    if path.exists():
        return
    key = AESGCM.generate_key(bit_length=256)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    kek = LocalKek(kek_id_for(key), key)
    write_key_file(tmp, [kek], kek.key_id)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def add_key(path: Path) -> str:
    """A new random KEK appended to the key file and made current; returns its id."""
    keks, _ = load_key_file(path) if path.exists() else ([], "")
    key = AESGCM.generate_key(bit_length=256)
    new = LocalKek(kek_id_for(key), key)
    write_key_file(path, [*keks, new], new.key_id)
    return new.key_id


# -- the process-wide ring ---------------------------------------------------------------------
# Column types and blob stores of every service in this process share one ring, so a value written
# by any of them opens in any other (the embedded mode mounts all services in one process).
_RING = KeyRing()
ENVELOPE = Envelope(_RING)


def configure(keks: list[LocalKek], current: str) -> Envelope:
    for kek in keks:
        _RING.add(kek)
    _RING.set_current(current)
    return ENVELOPE
