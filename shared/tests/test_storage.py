"""bio_shared.storage.BlobStore: round trips, key validation (no escape from the root), atomic writes."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from bio_shared.errors import BadRequest, NotFound
from bio_shared.storage import BlobStore


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_root_is_created_and_resolved(tmp_path: Path) -> None:
    root = tmp_path / "a" / ".." / "b" / "blobs"
    s = BlobStore(root)
    assert s.root == (tmp_path / "b" / "blobs").resolve()
    assert s.root.is_dir()
    BlobStore(str(root))  # an existing root and a str are fine


def test_round_trip(store: BlobStore) -> None:
    key = "acct-1/uploads/abc.png"
    assert not store.exists(key)
    assert store.put(key, b"\x89PNG payload") == key
    assert store.exists(key)
    assert store.get(key) == b"\x89PNG payload"
    assert store.size(key) == len(b"\x89PNG payload")
    assert store.path_for(key) == store.root / "acct-1" / "uploads" / "abc.png"
    assert store.delete(key) is True
    assert not store.exists(key)
    assert store.delete(key) is False


def test_overwrite_replaces_content(store: BlobStore) -> None:
    store.put("a/b", b"first version, longer")
    store.put("a/b", b"second")
    assert store.get("a/b") == b"second"
    assert store.size("a/b") == 6


def test_empty_and_binary_blobs(store: BlobStore) -> None:
    store.put("k/empty", b"")
    assert store.get("k/empty") == b"" and store.size("k/empty") == 0
    payload = bytes(range(256)) * 1000
    store.put("k/bin", payload)
    assert store.get("k/bin") == payload


def test_missing_blob(store: BlobStore) -> None:
    with pytest.raises(NotFound) as info:
        store.get("nobody/nothing.bin")
    assert info.value.status_code == 404 and info.value.code == "blob_not_found"
    with pytest.raises(NotFound):
        store.size("nobody/nothing.bin")
    assert store.exists("nobody/nothing.bin") is False
    assert store.delete("nobody/nothing.bin") is False


def test_single_segment_and_deep_keys(store: BlobStore) -> None:
    store.put("top", b"1")
    deep = "/".join(f"s{i}" for i in range(8))
    store.put(deep, b"8")
    assert store.get("top") == b"1" and store.get(deep) == b"8"
    with pytest.raises(BadRequest):
        store.put("/".join(f"s{i}" for i in range(9)), b"9")  # more than 8 segments


def test_allowed_characters(store: BlobStore) -> None:
    for key in ("A9/b_c/d-e.f.g", "0/x.tar.gz", "u/" + "n" * 128, "a/b.c..d".replace("..", "._")):
        store.put(key, b"ok")
        assert store.get(key) == b"ok"


@pytest.mark.parametrize("key", [
    "",
    "..",
    ".",
    "../x",
    "a/../../etc/passwd",
    "a/../b",
    "/etc/passwd",
    "//etc/passwd",
    "a//b",
    "a/./b",
    "./a",
    "a/",
    "a/b/",
    "a\\b",
    "..\\..\\windows",
    "a\x00b",
    "a/b\x00.png",
    "a/b\nc",
    "a b",
    "~/x",
    "$HOME/x",
    ".hidden",
    "a/.hidden",
    "a/..hidden",
    "a/b..",
    "a/b..c",
    "-rf",
    "_x",
    "é/x",
    "a/%2e%2e/b",
    "a:b",
    "C:/x",
    "a/" + "n" * 129,
    "x" * 5000,
    "/".join(["a"] * 9),
])
def test_invalid_keys_refused_everywhere(store: BlobStore, key: str) -> None:
    for op in (lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.exists(key),
               lambda: store.delete(key), lambda: store.size(key), lambda: store.path_for(key)):
        with pytest.raises(BadRequest) as info:
            op()
        assert info.value.status_code == 400
        assert info.value.code == "invalid_blob_key"
    assert all_files(store.root) == []
@pytest.mark.parametrize("key", ["a/b\n", "a\n", "acct/kind/x.png\n"])
def test_trailing_newline_keys_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(BadRequest):
        store.put(key, b"x")
    assert all_files(store.root) == []


def test_traversal_cannot_touch_files_outside_root(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not touch")
    store = BlobStore(tmp_path / "blobs")
    for key in ("../secret.txt", "a/../../secret.txt", str(secret), "..%2fsecret.txt"):
        with pytest.raises(BadRequest):
            store.get(key)
        with pytest.raises(BadRequest):
            store.delete(key)
        with pytest.raises(BadRequest):
            store.put(key, b"overwritten")
    assert secret.read_text() == "do not touch"


def test_symlinked_segment_cannot_escape_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_bytes(b"outside")
    store = BlobStore(tmp_path / "blobs")
    (store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BadRequest):
        store.get("link/f")
    with pytest.raises(BadRequest):
        store.put("link/g", b"x")
    assert not (outside / "g").exists()


def test_put_leaves_no_temp_files(store: BlobStore) -> None:
    for i in range(20):
        store.put(f"acct/kind/{i}.bin", os.urandom(1000))
    names = [p.name for p in all_files(store.root)]
    assert len(names) == 20
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")]
def test_failed_put_leaves_no_temp_file(store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.put("acct/kind/keep.bin", b"old")

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        store.put("acct/kind/keep.bin", b"new")
    monkeypatch.undo()
    assert store.get("acct/kind/keep.bin") == b"old"  # the old blob is intact
    assert [p.name for p in all_files(store.root)] == ["keep.bin"]


def test_readers_never_see_partial_blobs(store: BlobStore) -> None:
    key = "acct/kind/hot.bin"
    a, b = b"a" * 200_000, b"b" * 300_000
    store.put(key, a)
    stop = threading.Event()
    bad: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            data = store.get(key)
            if data not in (a, b):
                bad.append(len(data))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(30):
            store.put(key, b if i % 2 == 0 else a)
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert bad == []


def test_new_key_shape() -> None:
    key = BlobStore.new_key("acct-1", "fingerprint-uploads", ".PNG")
    assert re.fullmatch(r"acct-1/fingerprint-uploads/[0-9a-f]{32}\.png", key)
    assert re.fullmatch(r"o/k/[0-9a-f]{32}\.bin", BlobStore.new_key("o", "k", "bin"))
    assert re.fullmatch(r"o/k/[0-9a-f]{32}", BlobStore.new_key("o", "k", ""))
    keys = {BlobStore.new_key("o", "k", "x") for _ in range(200)}
    assert len(keys) == 200


def test_new_keys_are_valid_keys(store: BlobStore) -> None:
    for ext in ("png", ".jpg", "", "TIFF"):
        key = BlobStore.new_key("0123456789abcdef0123456789abcdef", "face-verify-uploads", ext)
        store.put(key, b"1")
        assert store.get(key) == b"1"
