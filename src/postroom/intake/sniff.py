"""What a file is, judged from its bytes (never from the client's claim), and whether a queue
takes it (the file-type rule, applied by `intake.accept.judge`).

The only module that imports `magic`. libmagic names most types from the first few KiB, but it
recognises an Office Open XML file only when its `word/` or `xl/` entry starts near the top of
the zip; a big thumbnail or custom XML part first makes it say `application/zip`
(docs/MEASURED.md). So a zip is opened once more, through its central directory (at the end of
the file, no decompression), before it is called a zip.

`sniff_mime` blocks (libmagic, file reads): call it through `asyncio.to_thread`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import magic

# libmagic needs no more than this to name every type we accept (docs/MEASURED.md).
SNIFF_BYTES = 8192

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

# What a queue accepts unless its `settings.accepted_mime_types` says otherwise.
DEFAULT_ACCEPTED_MIME_TYPES: tuple[str, ...] = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/tiff",
    "image/gif",
    "image/bmp",
    "image/webp",
    "application/msword",
    DOCX,
    "application/vnd.ms-excel",
    XLSX,
    "application/xml",
    "text/xml",
    "application/json",
    "text/csv",
    "text/plain",
    "text/html",
    "application/EDI-X12",
    "application/EDIFACT",
    "application/zip",
)

# libmagic's older or vendor names for the same types, mapped to the names clients know.
_CANONICAL = {
    "image/x-ms-bmp": "image/bmp",
    "image/x-bmp": "image/bmp",
    "application/x-zip-compressed": "application/zip",
    "application/csv": "text/csv",
    "application/x-pdf": "application/pdf",
}

# The part every Office Open XML package of that kind must contain (ECMA-376 part 2).
_OOXML_MAIN_PARTS = (
    ("word/document.xml", DOCX),
    ("xl/workbook.xml", XLSX),
    ("ppt/presentation.xml", PPTX),
)


def sniff_mime(head: bytes, path: Path | None = None) -> str:
    """The MIME type of a file from its first bytes (`head`, ideally SNIFF_BYTES of them).

    `path` (the stored file) lets a zip be looked into; without it a zip is recognised as an
    Office file only when `head` holds the whole file.
    """
    if not head:
        return "application/x-empty"
    mime = magic.from_buffer(head[:SNIFF_BYTES], mime=True) or "application/octet-stream"
    mime = _CANONICAL.get(mime, mime)
    if head.startswith(b"PK\x03\x04") and mime in ("application/zip", "application/octet-stream"):
        whole_in_head = len(head) < SNIFF_BYTES
        if path is not None:
            mime = _office_type_of_zip(path) or mime
        elif whole_in_head:
            mime = _office_type_of_zip(io.BytesIO(head)) or mime
    return mime


def _office_type_of_zip(source: Path | io.BytesIO) -> str | None:
    try:
        with zipfile.ZipFile(source) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    for part, mime in _OOXML_MAIN_PARTS:
        if part in names:
            return mime
    return None


def mime_accepted(mime: str, accepted_patterns: Iterable[str]) -> bool:
    """Whether `mime` matches one of the patterns: exact (case-insensitive), `type/*`, or `*/*`."""
    wanted = mime.split(";", 1)[0].strip().lower()
    for raw in accepted_patterns:
        pattern = str(raw).split(";", 1)[0].strip().lower()
        if pattern in ("*", "*/*") or pattern == wanted:
            return True
        if pattern.endswith("/*") and wanted.startswith(pattern[:-1]):
            return True
    return False


def accepted_mime_types(queue_settings: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The patterns a queue accepts: its `settings.accepted_mime_types`, else the default list."""
    configured = (queue_settings or {}).get("accepted_mime_types")
    if isinstance(configured, list) and configured:
        return tuple(str(p) for p in configured)
    return DEFAULT_ACCEPTED_MIME_TYPES


def rejection_reason(mime: str, queue_settings: Mapping[str, Any] | None) -> str | None:
    """Why a queue refuses a file of this type (the annotation's failed_import message), or None."""
    if mime_accepted(mime, accepted_mime_types(queue_settings)):
        return None
    return f"The file type {mime} is not accepted by this queue (settings.accepted_mime_types)."
