"""The digest of what a request asks for, to tell a retry of a request from another request that
reuses its `Idempotency-Key`.

It covers the method, the path, the query string, the media type and the body. A JSON body is
hashed whole. An upload body is hashed while it streams, part by part as the intake reads it
(`api.upload_body.RequestBody` feeds it): each part's headers that carry meaning
(Content-Disposition, Content-Type, Content-Transfer-Encoding) and the sha256 and size of its
bytes. The multipart boundary is left out on purpose: clients such as curl draw a new one for
every attempt, and a retry must still be recognised. Nothing is kept but running hashes, so
memory stays bounded whatever the body's size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from aiohttp import web

PART_HEADERS = ("Content-Disposition", "Content-Type", "Content-Transfer-Encoding")
DIGEST: web.RequestKey[RequestDigest] = web.RequestKey("request_digest")


class RequestDigest:
    """A sha256 over length-framed fields, with one running sha256 per body part."""

    def __init__(self) -> None:
        self._outer = hashlib.sha256()
        self._part: hashlib._Hash | None = None
        self._size = 0

    @classmethod
    def of_request(cls, request: web.Request) -> RequestDigest:
        digest = cls()
        for value in (request.method, request.rel_url.raw_path, request.rel_url.raw_query_string):
            digest.field(value)
        digest.field(request.content_type)
        digest.field(request.headers.get("Content-Disposition", ""))
        return digest

    def field(self, value: str) -> None:
        data = value.encode("utf-8", "surrogateescape")
        self._outer.update(len(data).to_bytes(8, "big") + data)

    def begin_part(self, headers: Mapping[str, str]) -> None:
        self._end_part()
        self.field("part")
        for name in PART_HEADERS:
            self.field(headers.get(name, ""))
        self._part = hashlib.sha256()
        self._size = 0

    def data(self, chunk: bytes) -> None:
        if self._part is None:  # a raw body: one part without headers
            self.begin_part({})
        assert self._part is not None
        self._part.update(chunk)
        self._size += len(chunk)

    def _end_part(self) -> None:
        if self._part is not None:
            self.field(f"{self._part.hexdigest()}:{self._size}")
            self._part = None

    def hexdigest(self) -> str:
        self._end_part()
        return self._outer.hexdigest()
