"""Reading an upload request body as a stream: multipart parts or one raw body, into blob writers.

Memory stays bounded whatever the size: the body is read chunk by chunk (`request.multipart()` +
`read_chunk`, or `request.content`) and every chunk goes straight to a temp file of the blob store,
hashed on the way. Nothing is placed in the store while the body is read: a refused request
(413, 400) only removes its temp files, so it never touches a blob another record may share.

The size limit applies to the whole body: refused from `Content-Length` before reading, else
counted while streaming (`StreamReader.total_bytes`, after transfer decoding) and stopped there.

Rules (SPEC §4): a multipart part with a file name is a file, and so is a part named `content`;
the text fields an endpoint names (`metadata`, `values`, `parent`) are fields whatever their
Content-Type or file name (the rossum-api SDK sends them with `filename=""`, curl users with
`-F metadata=@m.json`); any other part is refused. A non-multipart body of any Content-Type is
the one file. Disk errors while storing are the server's fault: 503, so clients retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from postroom.errors import BadRequest, PayloadTooLarge, RequestTimeout, ServiceUnavailable
from postroom.intake import names
from postroom.intake.accept import StoredFile
from postroom.intake.blobs import BlobWriter, LocalBlobStore
from postroom.intake.sniff import SNIFF_BYTES, sniff_mime

T = TypeVar("T")
CHUNK = 256 * 1024
MAX_FILES = 100  # file parts in one request; each holds an open temp file until the end
MAX_FIELD_BYTES = 64 * 1024  # a text field other than metadata (values, parent)
FILE_FIELD = "content"
UPLOAD_PREFIX = "upload:"
_PLAIN_ENCODINGS = ("", "7bit", "8bit", "binary")


@dataclass
class ReceivedFile:
    writer: BlobWriter
    name: str


@dataclass
class ReceivedBody:
    """What a request carried; the files are still temp files until `store_files`."""

    files: list[ReceivedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    async def discard(self) -> None:
        for received in self.files:
            await received.writer.abort()


@dataclass(frozen=True)
class BodyRules:
    max_body_bytes: int
    field_limits: dict[str, int]  # allowed text fields → largest size in bytes
    idle_timeout_s: float  # a body that stalls this long is dropped (408)
    path_filename: str | None = None  # the `{filename}` URL segment, for a raw body

    @property
    def allowed_fields(self) -> Collection[str]:
        return self.field_limits.keys()


def refuse_oversized(request: web.Request, limit: int) -> None:
    """413 from `Content-Length` alone, before a byte of the body is read."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(_too_large_detail(limit))


def _too_large_detail(limit: int) -> str:
    return (
        f"Request body is larger than the limit of {limit} bytes "
        f"({limit / (1024 * 1024):g} MiB, limits.max_upload_bytes)."
    )


async def receive_body(
    request: web.Request, blobs: LocalBlobStore, rules: BodyRules
) -> ReceivedBody:
    """Stream the body into temp files; BadRequest/PayloadTooLarge leave nothing behind."""
    refuse_oversized(request, rules.max_body_bytes)
    body = ReceivedBody()
    try:
        # Not `request.content_type`: aiohttp parses it with the email package, slowly.
        content_type = request.headers.get(hdrs.CONTENT_TYPE, "").lstrip().lower()
        if content_type.startswith("multipart/"):
            await _receive_multipart(request, blobs, rules, body)
        else:
            await _receive_raw(request, blobs, rules, body)
    except BaseException:
        # Disconnects and cancellation included: the temp files must not outlive the request.
        await asyncio.shield(body.discard())
        raise
    return body


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """A failing disk (full, read-only, gone) is a 503 the client may retry, never a 500."""
    try:
        yield
    except ConnectionError:
        raise
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ServiceUnavailable(
            f"The upload could not be stored ({reason}); try again later."
        ) from None


def _check_total(request: web.Request, limit: int) -> None:
    if request.content.total_bytes > limit:
        raise PayloadTooLarge(_too_large_detail(limit))


async def _receive_raw(
    request: web.Request, blobs: LocalBlobStore, rules: BodyRules, body: ReceivedBody
) -> None:
    if rules.path_filename is not None:
        raw_name: str | None = rules.path_filename  # decoded by the router already
    else:
        raw_name = names.filename_from_disposition(request.headers.get(hdrs.CONTENT_DISPOSITION))
    received = ReceivedFile(blobs.open_writer(), names.clean_file_name(raw_name))
    body.files.append(received)
    while chunk := await _unstalled(request.content.read(CHUNK), rules):
        _check_total(request, rules.max_body_bytes)
        with storage_errors():
            await received.writer.write(chunk)


async def _receive_multipart(
    request: web.Request, blobs: LocalBlobStore, rules: BodyRules, body: ReceivedBody
) -> None:
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError, KeyError, HttpProcessingError) as exc:
        raise BadRequest(f"Malformed multipart body: {exc}.") from None
    while True:
        try:
            part = await _unstalled(reader.next(), rules)
        # HttpProcessingError: e.g. a part header with control characters (InvalidHeader)
        except (ValueError, AssertionError, RuntimeError, HttpProcessingError) as exc:
            raise BadRequest(f"Malformed multipart body: {exc}.") from None
        _check_total(request, rules.max_body_bytes)
        if part is None:
            return
        if not isinstance(part, BodyPartReader):
            raise BadRequest("Nested multipart parts are not supported; send each file as a part.")
        await _receive_part(request, part, blobs, rules, body)


async def _receive_part(
    request: web.Request,
    part: BodyPartReader,
    blobs: LocalBlobStore,
    rules: BodyRules,
    body: ReceivedBody,
) -> None:
    encoding = part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING, "").strip().lower()
    if encoding not in _PLAIN_ENCODINGS:
        raise BadRequest(f"Content-Transfer-Encoding {encoding!r} is not supported in a part.")
    _disposition, params = names.parse_disposition(part.headers.get(hdrs.CONTENT_DISPOSITION))
    name = params.get("name")
    filename = names.filename_from_params(params)
    # A named text field stays a field even when sent as a file (`curl -F metadata=@m.json`);
    # any other part with a file name is a file, and so is `content` without one.
    if name not in rules.allowed_fields and (filename or name == FILE_FIELD):
        await _receive_file_part(request, part, blobs, rules, body, filename)
        return
    if not name:
        raise BadRequest("A multipart part has no name (Content-Disposition: form-data; name=...).")
    if name not in rules.allowed_fields:
        allowed = ", ".join(sorted({FILE_FIELD, *rules.allowed_fields}))
        raise BadRequest(f"{name}: unknown field (allowed: {allowed}).")
    if name in body.fields:
        raise BadRequest(f"{name}: given more than once.")
    body.fields[name] = await _read_text_field(request, part, name, rules)


async def _receive_file_part(
    request: web.Request,
    part: BodyPartReader,
    blobs: LocalBlobStore,
    rules: BodyRules,
    body: ReceivedBody,
    filename: str | None,
) -> None:
    if len(body.files) >= MAX_FILES:
        raise BadRequest(f"Too many files in one request (at most {MAX_FILES}).")
    received = ReceivedFile(blobs.open_writer(), names.clean_file_name(filename))
    body.files.append(received)
    while True:
        chunk = await _read_chunk(part, rules)
        _check_total(request, rules.max_body_bytes)
        if not chunk:
            return
        with storage_errors():
            await received.writer.write(chunk)


async def _read_chunk(part: BodyPartReader, rules: BodyRules) -> bytes:
    try:
        return await _unstalled(part.read_chunk(CHUNK), rules)
    except (ValueError, AssertionError) as exc:
        raise BadRequest(f"Malformed multipart body: {exc}.") from None


async def _unstalled(read: Awaitable[T], rules: BodyRules) -> T:
    """One read of the body; a client that sends nothing for `idle_timeout_s` gets a 408 (aiohttp
    has no timeout of its own while a body streams, so it would hold a temp file forever)."""
    try:
        async with asyncio.timeout(rules.idle_timeout_s):
            return await read
    except TimeoutError:
        raise RequestTimeout(
            f"No bytes of the request body arrived for {rules.idle_timeout_s:g} s "
            "(limits.upload_idle_timeout_s)."
        ) from None


async def _read_text_field(
    request: web.Request, part: BodyPartReader, name: str, rules: BodyRules
) -> str:
    limit = rules.field_limits[name]
    data = bytearray()
    while chunk := await _read_chunk(part, rules):
        _check_total(request, rules.max_body_bytes)
        data.extend(chunk)
        if len(data) > limit:
            raise BadRequest(f"{name}: larger than {limit} bytes.")
    charset = part.get_charset("utf-8")
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise BadRequest(f"{name}: not valid {charset} text.") from None


async def store_files(body: ReceivedBody, blobs: LocalBlobStore) -> list[StoredFile]:
    """Make every received file a durable blob (fsync, rename, fsync dir) and sniff its type.

    Called only once the request is known to be acceptable. An empty file is a 400.
    """
    for received in body.files:
        if received.writer.size == 0:
            raise BadRequest(f"File {received.name!r} is empty.")
    stored: list[StoredFile] = []
    for received in body.files:
        with storage_errors():
            key, mime = await asyncio.to_thread(_commit_and_sniff, received.writer, blobs)
        stored.append(StoredFile(key, received.writer.size, mime, received.name))
    return stored


def _commit_and_sniff(writer: BlobWriter, blobs: LocalBlobStore) -> tuple[str, str]:
    # One worker-thread trip per file: write, fsync, rename, fsync dir, then libmagic.
    key = writer.commit_blocking()
    return key, sniff_mime(writer.head[:SNIFF_BYTES], blobs.path_of(key))


async def discard_quietly(body: ReceivedBody) -> None:
    with contextlib.suppress(OSError):
        await body.discard()


def json_object_field(body: ReceivedBody, name: str) -> dict[str, Any]:
    """A text field holding a JSON object ({} when absent); 400 naming the field otherwise."""
    text = body.fields.get(name)
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name}: expected a JSON object, got {type(value).__name__}.")
    return value


def upload_values(body: ReceivedBody) -> dict[str, Any]:
    """`values` as rir_field_name → value: `upload:<key>`, a bare `<key>` meaning the same.

    Any other prefix is kept under `upload:` too, so an upload cannot pose as e-mail data.
    """
    values = json_object_field(body, "values")
    normalised: dict[str, Any] = {}
    for key, value in values.items():
        if not key:
            raise BadRequest("values: keys must not be empty.")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise BadRequest(f"values.{key}: expected a string, number, boolean or null.")
        name = key if key.startswith(UPLOAD_PREFIX) else UPLOAD_PREFIX + key
        normalised[name] = value
    return normalised
