"""Zip archives laid out one folder per person, read without trusting what their headers claim.

The request only looks at the central directory (cheap, bounded by the upload size): entry count from
the end record before anything is parsed, then overlapping entries, the trick of zip bombs that point
many names at one compressed member (zipfile on Python 3.11 does not detect it). The job then reads
every member streamed with two caps: per file (the upload limit) and for the whole archive (what is
actually decompressed, never the sizes the headers declare).
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bio_face_recognition.exceptions import ArchiveTooLarge, NotAZip, OverlappingEntries, TooManyFiles
from bio_shared.errors import BioError

Entry = tuple[str | None, str, Callable[[], bytes]]  # (person folder, file name, read the bytes)
_ZIP_SKIP = ("__MACOSX/", ".")
_EOCD = b"PK\x05\x06"
_LOCAL = b"PK\x03\x04"
_CHUNK = 1 << 20


def _declared_entries(data: bytes) -> int:
    """Entry count of the end-of-central-directory record (0xFFFF: a zip64 archive, counted later)."""
    at = data.rfind(_EOCD, max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        raise NotAZip()
    return int(struct.unpack_from("<H", data, at + 10)[0])


def _check_overlaps(zf: zipfile.ZipFile, data: bytes) -> None:
    spans = []
    for m in zf.infolist():
        start = m.header_offset
        header = data[start:start + 30]
        if len(header) < 30 or not header.startswith(_LOCAL):
            raise NotAZip("an entry of the archive points outside it or at no local header",
                          details={"file": m.filename})
        name_len, extra_len = struct.unpack_from("<HH", header, 26)
        spans.append((start, start + 30 + name_len + extra_len + m.compress_size, m.filename))
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise OverlappingEntries(details={"files": [first, second]})


def open_checked(data: bytes, max_entries: int) -> zipfile.ZipFile:
    """The archive, when its central directory is sane: not too many entries, none overlapping."""
    declared = _declared_entries(data)
    if declared != 0xFFFF and declared > 2 * max_entries:  # files plus at most one folder entry each
        raise TooManyFiles(f"the archive has {declared} entries; the limit is {max_entries} files")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
        raise NotAZip() from exc
    files = sum(1 for m in zf.infolist() if not m.is_dir())
    if files > max_entries or len(zf.infolist()) > 2 * max_entries:
        zf.close()
        raise TooManyFiles(f"the archive has {files} files; the limit is {max_entries}")
    try:
        _check_overlaps(zf, data)
    except BioError:
        zf.close()
        raise
    return zf


class Budget:
    """What the job may still decompress from one archive, in bytes."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.left = total


def _reader(zf: zipfile.ZipFile, m: zipfile.ZipInfo, max_bytes: int, budget: Budget) -> Callable[[], bytes]:
    def read() -> bytes:
        if budget.left <= 0:
            raise ArchiveTooLarge(f"the archive's files exceed {budget.total} bytes once uncompressed; "
                                  "later files were not read", details={"limit_bytes": budget.total})
        if m.file_size > max_bytes:
            raise BioError(f"file is {m.file_size} bytes; the limit is {max_bytes}", code="payload_too_large")
        chunks, size = [], 0
        try:
            with zf.open(m) as fh:
                while size <= max_bytes and budget.left > 0:
                    chunk = fh.read(min(_CHUNK, max_bytes + 1 - size, budget.left))
                    if not chunk:
                        break
                    size += len(chunk)
                    budget.left -= len(chunk)
                    chunks.append(chunk)
        except Exception as exc:  # BadZipFile, zlib.error, encrypted or unsupported members, CRC errors
            raise BioError("the archive entry cannot be read", code="corrupt_archive_entry",
                           details={"reason": type(exc).__name__}) from exc
        if size > max_bytes:
            raise BioError(f"file is larger than {max_bytes} bytes", code="payload_too_large")
        if budget.left <= 0 and size < m.file_size:
            raise ArchiveTooLarge(details={"limit_bytes": budget.total})
        return b"".join(chunks)

    return read


def _is_metadata(parts: tuple[str, ...]) -> bool:
    """macOS resource forks (__MACOSX/, ._x.jpg) and hidden files (.DS_Store): reported as skipped."""
    return any(part.startswith(_ZIP_SKIP) for part in parts)


def _skipped() -> bytes:
    raise BioError("hidden or system metadata file (e.g. __MACOSX/, .DS_Store); not a photo", code="skipped_metadata")


def _person(parts: tuple[str, ...]) -> str | None:
    return (parts[-2].strip() or None) if len(parts) >= 2 else None


def zip_entries(zf: zipfile.ZipFile, max_bytes: int, max_total_bytes: int) -> list[Entry]:
    """``(person, file, read)`` for every file of a checked archive (``open_checked``)."""
    budget = Budget(max_total_bytes)
    out: list[Entry] = []
    for m in zf.infolist():
        if m.is_dir():
            continue
        parts = PurePosixPath(m.filename).parts
        out.append((_person(parts), m.filename, _skipped if _is_metadata(parts) else _reader(zf, m, max_bytes, budget)))
    return out


def directory_entries(root: Path) -> list[Entry]:
    """``(person, file, read)`` for a directory laid out one folder per person (CLI bulk enrollment)."""
    out: list[Entry] = []
    for p in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = p.relative_to(root)
        out.append((_person(rel.parts), rel.as_posix(), _skipped if _is_metadata(rel.parts) else p.read_bytes))
    return out


@dataclass
class ArchiveInfo:
    files: int
    declared_bytes: int


def describe(zf: zipfile.ZipFile) -> ArchiveInfo:
    members = [m for m in zf.infolist() if not m.is_dir()]
    return ArchiveInfo(len(members), sum(m.file_size for m in members))
