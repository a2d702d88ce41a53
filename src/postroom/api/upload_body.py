"""Upload bodies at the HTTP edge: the aiohttp request as the intake's `Body`, and the rule that a
refused upload closes its connection.

`RequestBody` streams `request.multipart()` parts (`read_chunk`) or the raw `request.content`,
and turns aiohttp's complaints about a malformed body into a 400; what the parts mean (files,
fields, limits, the idle timeout) is decided by `intake.parts`. Every part and byte it reads
also goes into the request's digest when it has one (`api.request_digest`: a request with an
`Idempotency-Key`); `drain` reads a body only for that digest, within the upload limits.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from postroom.api.middleware.errors import answer_and_close, error_response
from postroom.api.request_digest import DIGEST, RequestDigest
from postroom.api.routing import Call, Handler
from postroom.errors import BadRequest, PayloadTooLarge, PostroomError, RequestTimeout

H = TypeVar("H", bound=Handler)
T = TypeVar("T")
CHUNK = 256 * 1024


def _malformed(exc: BaseException) -> BadRequest:
    return BadRequest(f"Malformed multipart body: {exc}.")


class _Part:
    """One part of the multipart body."""

    def __init__(self, part: BodyPartReader | None, digest: RequestDigest | None) -> None:
        self._part = part
        self._digest = digest

    @property
    def nested(self) -> bool:
        return self._part is None

    @property
    def headers(self) -> Mapping[str, str]:
        return self._part.headers if self._part is not None else {}

    def get_charset(self, default: str) -> str:
        return self._part.get_charset(default) if self._part is not None else default

    async def read_chunk(self, size: int) -> bytes:
        if self._part is None:
            return b""
        try:
            chunk = await self._part.read_chunk(size)
        except (ValueError, AssertionError) as exc:
            raise _malformed(exc) from None
        if self._digest is not None:
            self._digest.data(chunk)
        return chunk


class RequestBody:
    """The body of an upload request, as `intake.parts.Body`."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._reader: MultipartReader | None = None
        self._digest = request.get(DIGEST)

    @property
    def headers(self) -> Mapping[str, str]:
        return self._request.headers

    @property
    def content_length(self) -> int | None:
        return self._request.content_length

    @property
    def bytes_read(self) -> int:
        return self._request.content.total_bytes

    @property
    def path_file_name(self) -> str | None:
        return self._request.match_info.get("filename")  # decoded by the router already

    async def next_part(self) -> _Part | None:
        if self._reader is None:
            try:
                self._reader = await self._request.multipart()
            except (ValueError, AssertionError, KeyError, HttpProcessingError) as exc:
                raise _malformed(exc) from None
        try:
            part = await self._reader.next()
        # HttpProcessingError: e.g. a part header with control characters (InvalidHeader)
        except (ValueError, AssertionError, RuntimeError, HttpProcessingError) as exc:
            raise _malformed(exc) from None
        if part is None:
            return None
        if self._digest is not None:
            self._digest.begin_part(part.headers)
        return _Part(part if isinstance(part, BodyPartReader) else None, self._digest)

    async def read_chunk(self, size: int) -> bytes:
        chunk = await self._request.content.read(size)
        if self._digest is not None:
            self._digest.data(chunk)
        return chunk


async def _unstalled(read: Awaitable[T], idle_s: float) -> T:
    try:
        async with asyncio.timeout(idle_s):
            return await read
    except TimeoutError:
        raise RequestTimeout(
            f"No bytes of the request body arrived for {idle_s:g} s (limits.upload_idle_timeout_s)."
        ) from None


async def drain(request: web.Request, max_bytes: int, idle_s: float) -> None:
    """Read an upload body to its end only to feed the request's digest (nothing is kept)."""

    def check_size(length: int | None) -> None:
        if length is not None and length > max_bytes:
            raise PayloadTooLarge(f"Request body is larger than the limit of {max_bytes} bytes.")

    check_size(request.content_length)
    body = RequestBody(request)
    if not request.headers.get("Content-Type", "").lstrip().lower().startswith("multipart/"):
        while await _unstalled(body.read_chunk(CHUNK), idle_s):
            check_size(body.bytes_read)
        return
    while (part := await _unstalled(body.next_part(), idle_s)) is not None:
        check_size(body.bytes_read)
        while await _unstalled(part.read_chunk(CHUNK), idle_s):
            check_size(body.bytes_read)


def closes_when_refused(handler: H) -> H:
    """An error answered before the body was read to its end also closes the connection.

    Without `Connection: close` the client keeps the connection and aiohttp lingers reading the
    unwanted rest of the body (up to 10 s); with it the client hangs up once it has the answer.
    """

    @functools.wraps(handler)
    async def wrapper(call: Call) -> object:
        try:
            return await handler(call)
        except PostroomError as error:
            response = error_response(error)
            if isinstance(error, RequestTimeout):
                return await answer_and_close(call.request, response)
            if not call.request.content.is_eof():
                response.force_close()
            return response

    return wrapper  # type: ignore[return-value]
