"""Sending stored bytes (document content, raw emails) from the blob store in pieces."""

from __future__ import annotations

from aiohttp import web

from postroom.errors import NotFound
from postroom.services import Services


async def blob_response(
    svc: Services, key: str | None, what: str, headers: dict[str, str]
) -> web.FileResponse:
    """The blob `key` as a file response (sendfile, never read whole); 404 naming `what` when
    its bytes are gone (purged)."""
    if not key or not await svc.blobs.exists(key):
        raise NotFound(f"The content of {what} is no longer stored.")
    return web.FileResponse(
        svc.blobs.path_of(key), headers={**headers, "X-Content-Type-Options": "nosniff"}
    )
