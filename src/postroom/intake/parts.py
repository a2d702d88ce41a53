"""Reading an upload request body as a stream: multipart parts or one raw body, into blob writers.

The HTTP edge (`api.upload_body`) hands over the body as a `Body`: its headers, its length, the
bytes read so far, and reads (`next_part`, `read_chunk`) that turn a malformed body into a 400.
The rules live here: which parts are files and which are fields, how many files, how large a
field may be, the size limit and the idle timeout.

Memory stays bounded whatever the size: the body is read chunk by chunk and every chunk goes
straight to a temp file of the blob store, hashed on the way. Nothing is placed in the store
while the body is read: a refused request (413, 400) only removes its temp files, so it never
touches a blob another record may share.

The size limit applies to the whole body: refused from `Content-Length` before reading, else
counted while streaming (`Body.bytes_read`, after transfer decoding) and stopped there.

A multipart part with a file name is a file, and so is a part named `content`; the text fields
an endpoint names (`metadata`, `values`, `parent`) are fields whatever their Content-Type or file
name (the rossum-api SDK sends them with `filename=""`, curl users with `-F metadata=@m.json`);
any other part is refused. A non-multipart body of any Content-Type is the one file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from postroom import jsontext, metrics
from postroom.blobs.local import BlobWriter, LocalBlobStore
from postroom.errors import BadRequest, PayloadTooLarge, RequestTimeout
from postroom.intake import names
from postroom.intake.storing import StoredFile, storage_errors, store

T = TypeVar("T")
CHUNK = 256 * 1024
MAX_FILES = 100  # file parts in one request; each holds an open temp file until the end
MAX_VALUES_BYTES = 64 * 1024  # the `values` field
FILE_FIELD = "content"
CONTENT_TYPE = "Content-Type"
CONTENT_DISPOSITION = "Content-Disposition"
TRANSFER_ENCODING = "Content-Transfer-Encoding"
_PLAIN_ENCODINGS = ("", "7bit", "8bit", "binary")


class Part(Protocol):
    """One part of a multipart body, as the edge reads it."""

    @property
    def nested(self) -> bool:
        """A multipart inside the multipart (not supported)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    def get_charset(self, default: str) -> str: ...

    async def read_chunk(self, size: int) -> bytes:
        """The next bytes of the part, b"" at its end; BadRequest when malformed."""


class Body(Protocol):
    """An upload request body, as the edge streams it."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content_length(self) -> int | None: ...

    @property
    def bytes_read(self) -> int:
        """Body bytes read so far (after transfer decoding)."""

    @property
    def path_file_name(self) -> str | None:
        """A file name the URL gives (decoded already), for a raw body."""

    async def next_part(self) -> Part | None:
        """The next part of a multipart body (None after the last); BadRequest when malformed."""

    async def read_chunk(self, size: int) -> bytes:
        """The next bytes of a raw body, b"" at its end."""


@dataclass
class ReceivedFile:
    writer: BlobWriter
    name: str


@dataclass
class ReceivedBody:
    """What a request carried; the files are still temp files until they are stored."""

    files: list[ReceivedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    async def discard(self) -> None:
        for received in self.files:
            await received.writer.abort()

    async def discard_quietly(self) -> None:
        with contextlib.suppress(OSError):
            await self.discard()


@dataclass(frozen=True)
class BodyRules:
    max_body_bytes: int
    field_limits: dict[str, int]  # allowed text fields → largest size in bytes
    idle_timeout_s: float  # a body that stalls this long is dropped (408)
    # A body averaging less, counted after a grace of `idle_timeout_s`, is dropped (408); 0: off.
    min_bytes_per_s: float = 0.0

    @property
    def allowed_fields(self) -> Collection[str]:
        return self.field_limits.keys()


def refuse_oversized(content_length: int | None, limit: int) -> None:
    """413 from `Content-Length` alone, before a byte of the body is read."""
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(_too_large_detail(limit))


def _too_large_detail(limit: int) -> str:
    return (
        f"Request body is larger than the limit of {limit} bytes "
        f"({limit / (1024 * 1024):g} MiB, limits.max_upload_bytes)."
    )


class _Reader:
    """One body read under its rules into `received`."""

    def __init__(
        self, body: Body, blobs: LocalBlobStore, rules: BodyRules, received: ReceivedBody
    ) -> None:
        self.body = body
        self.blobs = blobs
        self.rules = rules
        self.received = received
        self.started = asyncio.get_running_loop().time()

    def check_total(self) -> None:
        if self.body.bytes_read > self.rules.max_body_bytes:
            raise PayloadTooLarge(_too_large_detail(self.rules.max_body_bytes))

    def _too_slow_in(self) -> float | None:
        """Seconds until the body's average rate falls below `min_bytes_per_s` (None: off)."""
        rate = self.rules.min_bytes_per_s
        if rate <= 0:
            return None
        due = self.started + self.rules.idle_timeout_s + self.body.bytes_read / rate
        return max(0.0, due - asyncio.get_running_loop().time())

    async def unstalled(self, read: Awaitable[T]) -> T:
        """One read of the body; a client that sends nothing for `idle_timeout_s`, or sends
        slower than `min_bytes_per_s` on average, gets a 408 (aiohttp has no timeout of its
        own while a body streams, so it would hold a temp file and a connection forever)."""
        timeout = self.rules.idle_timeout_s
        too_slow_in = self._too_slow_in()
        try:
            async with asyncio.timeout(
                timeout if too_slow_in is None else min(timeout, too_slow_in)
            ):
                return await read
        except TimeoutError:
            if too_slow_in is not None and too_slow_in < timeout:
                metrics.CONNECTIONS_TIMED_OUT.labels(protocol="http", phase="upload_rate").inc()
                raise RequestTimeout(
                    f"The request body arrived slower than {self.rules.min_bytes_per_s:g} "
                    "bytes/s (limits.upload_min_bytes_per_s)."
                ) from None
            raise RequestTimeout(
                f"No bytes of the request body arrived for {timeout:g} s "
                "(limits.upload_idle_timeout_s)."
            ) from None

    def new_file(self, raw_name: str | None) -> ReceivedFile:
        received = ReceivedFile(self.blobs.open_writer(), names.clean_file_name(raw_name))
        self.received.files.append(received)
        return received

    async def raw(self) -> None:
        raw_name = self.body.path_file_name
        if raw_name is None:
            raw_name = names.filename_from_disposition(self.body.headers.get(CONTENT_DISPOSITION))
        received = self.new_file(raw_name)
        while chunk := await self.unstalled(self.body.read_chunk(CHUNK)):
            self.check_total()
            with storage_errors():
                await received.writer.write(chunk)

    async def multipart(self) -> None:
        while True:
            part = await self.unstalled(self.body.next_part())
            self.check_total()
            if part is None:
                return
            if part.nested:
                raise BadRequest(
                    "Nested multipart parts are not supported; send each file as a part."
                )
            await self.part(part)

    async def part(self, part: Part) -> None:
        encoding = part.headers.get(TRANSFER_ENCODING, "").strip().lower()
        if encoding not in _PLAIN_ENCODINGS:
            raise BadRequest(f"Content-Transfer-Encoding {encoding!r} is not supported in a part.")
        _disposition, params = names.parse_disposition(part.headers.get(CONTENT_DISPOSITION))
        name = params.get("name")
        filename = names.filename_from_params(params)
        allowed = self.rules.allowed_fields
        # A named text field stays a field even when sent as a file (`curl -F metadata=@m.json`);
        # any other part with a file name is a file, and so is `content` without one.
        if name not in allowed and (filename or name == FILE_FIELD):
            await self.file_part(part, filename)
            return
        if not name:
            raise BadRequest(
                "A multipart part has no name (Content-Disposition: form-data; name=...)."
            )
        if name not in allowed:
            listed = ", ".join(sorted({FILE_FIELD, *allowed}))
            raise BadRequest(f"{name}: unknown field (allowed: {listed}).")
        if name in self.received.fields:
            raise BadRequest(f"{name}: given more than once.")
        self.received.fields[name] = await self.text_field(part, name)

    async def file_part(self, part: Part, filename: str | None) -> None:
        if len(self.received.files) >= MAX_FILES:
            raise BadRequest(f"Too many files in one request (at most {MAX_FILES}).")
        received = self.new_file(filename)
        while True:
            chunk = await self.unstalled(part.read_chunk(CHUNK))
            self.check_total()
            if not chunk:
                return
            with storage_errors():
                await received.writer.write(chunk)

    async def text_field(self, part: Part, name: str) -> str:
        limit = self.rules.field_limits[name]
        data = bytearray()
        while chunk := await self.unstalled(part.read_chunk(CHUNK)):
            self.check_total()
            data.extend(chunk)
            if len(data) > limit:
                raise BadRequest(f"{name}: larger than {limit} bytes.")
        charset = part.get_charset("utf-8")
        try:
            text = data.decode(charset)
        except (UnicodeDecodeError, LookupError):
            raise BadRequest(f"{name}: not valid {charset} text.") from None
        jsontext.check(text, name)  # no U+0000 or lone surrogate reaches a record
        return text


async def receive_body(body: Body, blobs: LocalBlobStore, rules: BodyRules) -> ReceivedBody:
    """Stream the body into temp files; BadRequest/PayloadTooLarge leave nothing behind."""
    refuse_oversized(body.content_length, rules.max_body_bytes)
    received = ReceivedBody()
    reader = _Reader(body, blobs, rules, received)
    try:
        content_type = body.headers.get(CONTENT_TYPE, "").lstrip().lower()
        if content_type.startswith("multipart/"):
            await reader.multipart()
        else:
            await reader.raw()
    except BaseException:
        # Disconnects and cancellation included: the temp files must not outlive the request.
        await asyncio.shield(received.discard())
        raise
    return received


async def store_files(body: ReceivedBody, blobs: LocalBlobStore) -> list[StoredFile]:
    """Make every received file a durable blob and sniff its type (`storing.store`).

    Called only once the request is known to be acceptable. An empty file is a 400.
    """
    for received in body.files:
        if received.writer.size == 0:
            raise BadRequest(f"File {received.name!r} is empty.")
    stored: list[StoredFile] = []
    for received in body.files:
        with storage_errors():
            stored.append(await store(blobs, received.writer, received.name))
    return stored


def json_object_field(body: ReceivedBody, name: str) -> dict[str, Any]:
    """A text field holding a JSON object ({} when absent); 400 naming the field otherwise."""
    text = body.fields.get(name, "")
    if not text.strip():
        return {}
    value = jsontext.parse(text, name)
    if isinstance(value, dict):
        return value
    raise BadRequest(f"{name}: expected a JSON object, got {type(value).__name__}.")


def values_field(body: ReceivedBody, check_key: Callable[[str], str]) -> dict[str, Any]:
    """`values`: a JSON object of plain values (string, number, boolean or null), each key
    passed through `check_key` (which refuses or renames it)."""
    values: dict[str, Any] = {}
    for key, value in json_object_field(body, "values").items():
        name = check_key(key)
        if value is not None and not isinstance(value, str | int | float | bool):
            raise BadRequest(f"values.{key}: expected a string, number, boolean or null.")
        values[name] = value
    return values
