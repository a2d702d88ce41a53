"""Zip attachments expanded per the Rossum reference ("Import by Email"), with zip-bomb guards.

Only the files at the root of the archive are taken, or — when the root holds nothing but one
folder — the files directly inside that folder. An archive is refused whole when it has 1000
files or more, when its files would inflate to more than 40 MB, or when one entry compresses
suspiciously well (a zip bomb). Declared sizes are not trusted: every entry is read in slices
and counted, so a lying central directory cannot make us inflate more than the limit.

Office files (DOCX, XLSX, ODF) are zips too; they are documents, not archives, and are left whole.
Blocking (decompression): call from a worker thread.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from postroom.status import AttachmentStatus

MAX_MEMBERS = 999  # "only archives containing less than 1000 files are processed"
MAX_UNCOMPRESSED = 40_000_000  # "may not exceed 40 MB"
# A deflated entry can legitimately reach ~1000:1 only for degenerate data (all zeros); real
# documents stay far below 100:1. Above this ratio, and beyond a small size, it is a bomb.
MAX_RATIO = 200
RATIO_FLOOR = 1024 * 1024
_SLICE = 1024 * 1024

# Entries that mark an archive as a document format rather than a folder of files.
_DOCUMENT_MARKERS = ("[Content_Types].xml", "mimetype", "META-INF/manifest.xml")
# Noise that archivers add beside the real files.
_SKIPPED_PREFIXES = ("__MACOSX/",)

S = AttachmentStatus  # why an archive is kept whole, as a document only


@dataclass(frozen=True)
class Expanded:
    """The outcome of opening one archive: its files, or why it was refused (`refused`)."""

    members: list[tuple[str, bytes]]
    refused: str | None = None


def looks_like_zip(data: bytes) -> bool:
    return data.startswith((b"PK\x03\x04", b"PK\x05\x06"))


def is_archive(data: bytes) -> bool:
    """A zip to expand: a zip that is not an Office/OpenDocument file."""
    if not looks_like_zip(data):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return True  # a broken zip is still meant as an archive; expand() reports it
    return not any(marker in names for marker in _DOCUMENT_MARKERS)


def _selected(infos: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The entries the reference processes: root files, or the files of a lone top folder."""
    entries = [
        i for i in infos if not i.filename.startswith(_SKIPPED_PREFIXES) and i.filename.strip("/")
    ]
    root_files = [i for i in entries if not i.is_dir() and "/" not in i.filename.rstrip("/")]
    tops = {i.filename.split("/", 1)[0] for i in entries if "/" in i.filename.rstrip("/")}
    tops |= {i.filename.rstrip("/") for i in entries if i.is_dir() and i.filename.count("/") == 1}
    if not root_files and len(tops) == 1:
        top = next(iter(tops)) + "/"
        return [
            i
            for i in entries
            if not i.is_dir()
            and i.filename.startswith(top)
            and "/" not in i.filename[len(top) :].rstrip("/")
        ]
    return root_files


def _base_name(info: zipfile.ZipInfo) -> str:
    return info.filename.rstrip("/").rsplit("/", 1)[-1]


def _refusal(infos: list[zipfile.ZipInfo]) -> str | None:
    files = [i for i in infos if not i.is_dir()]
    if len(files) > MAX_MEMBERS:
        return S.ZIP_TOO_MANY_FILES
    if any(i.flag_bits & 0x1 for i in files):
        return S.ZIP_ENCRYPTED
    if sum(i.file_size for i in files) > MAX_UNCOMPRESSED:
        return S.ZIP_TOO_LARGE
    for info in files:
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            return S.ZIP_BOMB
    return None


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes | None:
    """The entry's bytes, or None once more than `budget` bytes come out of it."""
    out = bytearray()
    with archive.open(info) as stream:
        while chunk := stream.read(_SLICE):
            out += chunk
            if len(out) > budget:
                return None
    return bytes(out)


def expand(data: bytes) -> Expanded:
    """Open an archive and return the files to process (or why it is refused)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            refused = _refusal(infos)
            if refused is not None:
                return Expanded([], refused)
            members: list[tuple[str, bytes]] = []
            budget = MAX_UNCOMPRESSED
            for info in _selected(infos):
                content = _read_bounded(archive, info, budget)
                if content is None:
                    return Expanded([], S.ZIP_BOMB)
                budget -= len(content)
                members.append((_base_name(info), content))
            return Expanded(members)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return Expanded([], S.ZIP_INVALID)
    except NotImplementedError:  # an unsupported compression method
        return Expanded([], S.ZIP_INVALID)
    except RuntimeError:  # encrypted entry without a password
        return Expanded([], S.ZIP_ENCRYPTED)
