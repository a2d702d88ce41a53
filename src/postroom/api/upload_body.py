"""Upload bodies at the HTTP edge: the aiohttp request as the intake's `Body`, and the rule that a
refused upload closes its connection.

`RequestBody` streams `request.multipart()` parts (`read_chunk`) or the raw `request.content`,
and turns aiohttp's complaints about a malformed body into a 400; what the parts mean (files,
fields, limits, the idle timeout) is decided by `intake.parts`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TypeVar

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from postroom.api.middleware.errors import answer_and_close, error_response
from postroom.api.routing import Call, Handler
from postroom.errors import BadRequest, PostroomError, RequestTimeout

H = TypeVar("H", bound=Handler)


def _malformed(exc: BaseException) -> BadRequest:
    return BadRequest(f"Malformed multipart body: {exc}.")


class _Part:
    """One part of the multipart body."""

    def __init__(self, part: BodyPartReader | None) -> None:
        self._part = part

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
            return await self._part.read_chunk(size)
        except (ValueError, AssertionError) as exc:
            raise _malformed(exc) from None


class RequestBody:
    """The body of an upload request, as `intake.parts.Body`."""

    def __init__(self, request: web.Request) -> None:
        self._request = request
        self._reader: MultipartReader | None = None

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
        return _Part(part if isinstance(part, BodyPartReader) else None)

    async def read_chunk(self, size: int) -> bytes:
        return await self._request.content.read(size)


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
