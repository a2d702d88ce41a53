"""Stored bytes answered as downloads (a document's content, a raw e-mail): where they are, and
the headers that go with them. The API edge sends the file from disk in pieces, never read whole.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from postroom.errors import NotFound
from postroom.runtime import Runtime

# Types a browser renders without running anything: shown inline. Everything else (HTML, SVG,
# XML, scripts, unknown types) is served as an attachment, so stored bytes from a stranger's
# e-mail never run as a page of the API's origin.
SAFE_INLINE = frozenset(
    {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/tiff",
        "image/bmp",
        "image/webp",
        "text/plain",
    }
)
# On every stored-bytes answer: no type sniffing, and nothing may load or run even if a browser
# renders the bytes (a sandboxed, resource-less document).
SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


@dataclass(frozen=True)
class StoredBytes:
    path: Path
    headers: dict[str, str]


async def stored_bytes(
    rt: Runtime, key: str | None, what: str, headers: dict[str, str]
) -> StoredBytes:
    """The blob `key` with its answer headers; 404 naming `what` when its bytes are gone
    (purged)."""
    if not key or not await rt.blobs.exists(key):
        raise NotFound(f"The content of {what} is no longer stored.")
    return StoredBytes(rt.blobs.path_of(key), {**headers, **SAFETY_HEADERS})


def disposition_for(mime_type: str) -> str:
    """`inline` for the passive types a browser may show in place, `attachment` for the rest."""
    return "inline" if mime_type.split(";")[0].strip().lower() in SAFE_INLINE else "attachment"


def content_disposition(name: str, disposition: str = "inline") -> str:
    """A `Content-Disposition` value carrying a UTF-8 name (RFC 6266 §4.3: ASCII fallback first)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in name)
    encoded = urllib.parse.quote(name, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
