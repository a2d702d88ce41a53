"""Stored bytes answered as downloads (a document's content, a raw e-mail): where they are, and
the headers that go with them. The API edge sends the file from disk in pieces, never read whole.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from postroom.errors import NotFound
from postroom.runtime import Runtime


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
    return StoredBytes(rt.blobs.path_of(key), {**headers, "X-Content-Type-Options": "nosniff"})


def content_disposition(name: str, disposition: str = "inline") -> str:
    """A `Content-Disposition` value carrying a UTF-8 name (RFC 6266 §4.3: ASCII fallback first)."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in name)
    encoded = urllib.parse.quote(name, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
