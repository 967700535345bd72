"""Envelope encryption: sealing, context binding, tampering, rotation, key files."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from bio_shared import crypto
from bio_shared.crypto import CryptoError, Envelope, KeyRing, LocalKek


def kek(name: str) -> LocalKek:
    return LocalKek(name, os.urandom(32))


def test_seal_open_round_trip_and_fresh_data_key_per_record() -> None:
    env = Envelope(KeyRing([kek("a")]))
    a, b = env.seal(b"template bytes", b"ctx"), env.seal(b"template bytes", b"ctx")
    assert a != b and b"template bytes" not in a  # new data key and nonce every time
    assert env.open(a, b"ctx") == env.open(b, b"ctx") == b"template bytes"
    assert Envelope.key_id_of(a) == "a"


def test_context_binding_and_tampering_are_detected() -> None:
    env = Envelope(KeyRing([kek("a")]))
    sealed = env.seal(b"embedding", b"face_embeddings.vector")
    with pytest.raises(CryptoError):
        env.open(sealed, b"fingerprint_templates.minutiae")  # moved to another place
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(CryptoError):
        env.open(flipped, b"face_embeddings.vector")
    with pytest.raises(CryptoError):
        Envelope(KeyRing([kek("b")])).open(sealed, b"face_embeddings.vector")  # unknown KEK
    with pytest.raises(CryptoError):
        env.open(crypto.MAGIC + b"\xff", b"x")  # truncated


def test_rewrap_changes_only_the_wrapped_key_and_reencrypt_everything() -> None:
    ring = KeyRing([kek("old")])
    env = Envelope(ring)
    sealed = env.seal(b"image", b"blob:k")
    ring.add(kek("new"), make_current=True)
    rewrapped = env.rewrap(sealed, b"blob:k")
    assert Envelope.key_id_of(rewrapped) == "new" and rewrapped[-20:] == sealed[-20:]  # same ciphertext
    assert env.open(rewrapped, b"blob:k") == b"image"
    again = env.rewrap(sealed, b"blob:k", reencrypt=True)
    assert again[-20:] != sealed[-20:] and env.open(again, b"blob:k") == b"image"
    assert env.rewrap(rewrapped, b"blob:k") is rewrapped  # already current: untouched


def test_legacy_plaintext_reads_as_is_and_is_sealed_by_rewrap() -> None:
    env = Envelope(KeyRing([kek("a")]))
    assert env.open(b"old plaintext", b"c") == b"old plaintext"
    sealed = env.rewrap(b"old plaintext", b"c")
    assert crypto.is_sealed(sealed) and env.open(sealed, b"c") == b"old plaintext"


def test_parse_keks_and_key_file(tmp_path: Path) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    keks = crypto.parse_keks(f"one:{base64.b64encode(k1).decode()},two:{base64.b64encode(k2).decode()}")
    assert [k.key_id for k in keks] == ["one", "two"]
    with pytest.raises(ValueError):
        crypto.parse_keks(base64.b64encode(b"short").decode())
    path = tmp_path / "secrets" / "kek.json"
    first = crypto.add_key(path)
    second = crypto.add_key(path)
    loaded, current = crypto.load_key_file(path)
    assert current == second and {k.key_id for k in loaded} == {first, second}
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_running_process_picks_up_a_new_key_from_the_file(tmp_path: Path) -> None:
    from bio_shared.sealed import envelope_for
    from bio_shared.settings import CommonSettings

    settings = CommonSettings(env="test", var_dir=tmp_path)
    env = envelope_for(settings)
    before = env.ring.current.key_id
    env.ring.refresh_s = 0.0
    new = crypto.add_key(tmp_path / "secrets" / "kek.json")
    assert new != before and env.ring.current.key_id == new


def test_production_without_a_key_refuses(tmp_path: Path) -> None:
    from bio_shared.sealed import load_keks
    from bio_shared.settings import CommonSettings

    settings = CommonSettings(env="production", var_dir=tmp_path, internal_secret="x" * 40)
    with pytest.raises(ValueError, match="BIO_KEK"):
        load_keks(settings)


def test_processes_starting_at_once_agree_on_one_development_key(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "secrets" / "kek.json"
    path.parent.mkdir()
    barrier = threading.Barrier(8)
    seen: list[str] = []

    def start() -> None:
        barrier.wait()
        crypto.ensure_key_file(path)
        seen.append(crypto.load_key_file(path)[1])

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1 and len(crypto.load_key_file(path)[0]) == 1
