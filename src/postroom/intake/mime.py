"""A raw message (RFC 5322 / MIME) → what Postroom keeps of it: addresses, bodies, files.

Files are every part with a file name, plus document-like parts without one (a PDF sent
`inline`, as Apple Mail does), named by `intake.names.attachment_name`. Images of at most
100x100 px are dropped (signature logos; Pillow reads only the image header). Attached messages
(`message/rfc822`, `*.eml`) are walked for their own files down to `MAX_DEPTH`. Zip archives are
expanded (`intake.zips`). A part whose base64 is broken is kept as a file with `status`
`broken_encoding` (a document without annotation).

Parsing is blocking and holds the message in memory: it runs in a worker thread, under the
memory budget of `intake.mail`.
"""

from __future__ import annotations

import logging
import mimetypes
import mmap
import os
import re
import warnings
from dataclasses import dataclass, field
from email import errors
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parseaddr
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image

from postroom.domain.emails import shorten_body
from postroom.errors import UnreadableMessage
from postroom.intake import mimestream, zips
from postroom.intake.names import attachment_name
from postroom.status import AttachmentStatus

log = logging.getLogger("postroom.smtp")

MAX_DEPTH = 3  # attached messages inside attached messages
MAX_NESTING = 50  # multipart levels of one message; deeper is refused (UnreadableMessage)
MAX_FILES = 1000  # files kept from one message (zip members included)
MAX_FILE_BYTES = 40 * 1024 * 1024  # "each file ≤ 40 MiB"
TINY_IMAGE_PX = 100
SCAN_FROM_BYTES = 1024 * 1024  # larger messages are scanned (mimestream), not fed line by line

# Parts without a file name that are documents all the same (besides image/*).
_DOCUMENT_TYPES = frozenset(
    {
        "application/pdf",
        "application/x-pdf",
        "application/zip",
        "application/x-zip-compressed",
        "application/octet-stream",
        "application/msword",
        "application/vnd.ms-excel",
        "application/xml",
        "application/json",
        "application/edi-x12",
        "application/edifact",
        "text/xml",
        "text/csv",
    }
)
_SIGNATURE_TYPES = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
        "application/pgp-keys",
        "application/ms-tnef",
    }
)
_BASE64_DEFECTS = (errors.InvalidBase64CharactersDefect, errors.InvalidBase64LengthDefect)
# The headers offered to datapoints as `email_header:<name>` (Rossum's list).
RIR_HEADERS = ("from", "to", "reply-to", "subject", "message-id", "date")


@dataclass
class Found:
    """One file found in a message."""

    name: str
    data: bytes
    status: str | None = None  # set: kept as a document only, for this reason
    members: list[Found] | None = None  # set for an expanded zip archive: its files


@dataclass
class ParsedMail:
    subject: str
    sender: dict[str, str]  # {"email", "name"} from the From header
    to: list[dict[str, str]]
    cc: list[dict[str, str]]
    message_id: str | None
    headers: dict[str, str]  # RIR_HEADERS present in the message, decoded
    body_text_plain: str
    body_text_html: str
    auto_submitted: bool  # Auto-Submitted / Precedence: bulk mail never gets a notification
    files: list[Found] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why) not kept at all


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


class _RawHeaders(Compat32):
    """compat32 parsing (fast: headers stay strings) with 8-bit header bytes read as UTF-8.

    The modern `policy.default` re-parses a header on every access; a message walk asks for
    Content-Type many times, which made it several times slower. RFC 2047 words are decoded
    only in the few headers Postroom keeps (`decode_words`).
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        if _ESCAPED_BYTE.search(value):
            # SMTPUTF8 mail carries raw UTF-8 in headers; the parser handed it over as escapes.
            value = value.encode("ascii", "surrogateescape").decode("utf-8", "replace")
        return value


PARSE_POLICY = _RawHeaders()


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with what no record or export can hold replaced: lone surrogates (which a sender
    gets through `unicode-escape` or `utf-7` charsets, or a literal `\\ud800` between encoded
    words) become U+FFFD, NUL is dropped."""
    if not _UNSTORABLE.search(text):
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def decode_words(value: str) -> str:
    """RFC 2047 encoded words (`=?utf-8?q?...?=`) → text; other text is left as it is."""
    return storable(_decoded_words(value))


def _decoded_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        parts = decode_header(value)
    except (ValueError, errors.HeaderParseError):
        return value
    out = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            # decode_header turns the unencoded text between words into raw-unicode-escape bytes.
            try:
                chunk = chunk.decode(charset or "raw-unicode-escape", "replace")
            except LookupError:
                chunk = chunk.decode("latin-1")
        out.append(chunk)
    return "".join(out)


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    return " ".join(decode_words(str(value)).split()) if value is not None else ""


def _addresses(message: Message, name: str) -> list[dict[str, str]]:
    values = [str(v) for v in message.get_all(name) or []]
    try:
        pairs = getaddresses(values)
    except (ValueError, IndexError, TypeError):
        return []
    return [
        {"email": addr, "name": decode_words(display)} for display, addr in pairs if "@" in addr
    ]


def _sender(message: Message) -> dict[str, str]:
    found = _addresses(message, "from")
    if found:
        return found[0]
    display, addr = parseaddr(str(message.get("from") or ""))
    return {"email": addr, "name": decode_words(display)}


def _is_auto_submitted(message: Message) -> bool:
    auto = _header(message, "auto-submitted").lower()
    precedence = _header(message, "precedence").lower()
    return (auto not in ("", "no")) or precedence in ("bulk", "junk", "list")


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return storable(payload.decode(charset, "replace"))
    except (LookupError, UnicodeError):
        return payload.decode("utf-8", "replace").replace("\x00", "")


# Leading bytes of the raster formats Pillow reads; anything else is not opened at all.
_IMAGE_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF",
    b"\x00\x00\x01\x00",
)


def is_tiny_image(data: bytes) -> bool:
    """An image of at most 100x100 px (read from its header only)."""
    if not data.startswith(_IMAGE_MAGIC):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(BytesIO(data)) as image:
                width, height = image.size
        except Exception:  # Pillow raises many kinds for non-images; any of them means "not one"
            return False
    return width <= TINY_IMAGE_PX and height <= TINY_IMAGE_PX


class _Walker:
    """Collects bodies and files while walking the MIME tree."""

    def __init__(self) -> None:
        self.plain: str | None = None
        self.html: str | None = None
        self.files: list[Found] = []
        self.skipped: list[tuple[str, str]] = []
        self.count = 0

    def walk(self, part: Message, depth: int, level: int = 0) -> None:
        if level > MAX_NESTING:
            raise UnreadableMessage(f"MIME parts nested deeper than {MAX_NESTING} levels.")
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype == "message/rfc822":
                if depth >= MAX_DEPTH:
                    self.skipped.append(("message/rfc822", "nested too deep"))
                    return
                depth += 1
            payload = part.get_payload()
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    self.walk(sub, depth, level + 1)
            return
        self._leaf(part, ctype, depth)

    def _leaf(self, part: Message, ctype: str, depth: int) -> None:
        try:
            raw_name = part.get_filename()
        except (ValueError, IndexError, TypeError, LookupError, errors.HeaderParseError):
            raw_name = None
        if raw_name is not None:
            raw_name = decode_words(raw_name)
        disposition = part.get_content_disposition()
        if ctype == "message/rfc822" or (raw_name or "").lower().endswith(".eml"):
            self._attached_message(part, raw_name, depth)
            return
        is_text = ctype in ("text/plain", "text/html")
        if raw_name is None and is_text and depth == 0 and disposition != "attachment":
            self._body(part, ctype)
            return
        if raw_name is None and not _document_like(ctype):
            return
        if ctype in _SIGNATURE_TYPES:
            return
        self._file(part, raw_name, ctype)

    def _body(self, part: Message, ctype: str) -> None:
        if ctype == "text/plain" and self.plain is None:
            self.plain = _text_of(part)
        elif ctype == "text/html" and self.html is None:
            self.html = _text_of(part)

    def _attached_message(self, part: Message, raw_name: str | None, depth: int) -> None:
        if depth >= MAX_DEPTH:
            self.skipped.append((raw_name or "message/rfc822", "nested too deep"))
            return
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data.strip():
            return
        self.walk(_parse_bytes(data), depth + 1)

    def _file(self, part: Message, raw_name: str | None, ctype: str) -> None:
        self.count += 1
        fallback = f"attachment-{self.count}{mimetypes.guess_extension(ctype) or ''}"
        name = attachment_name(raw_name, fallback)
        if len(self.files) >= MAX_FILES:
            self.skipped.append((name, "too many files"))
            return
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = b""
        if not data:
            self.skipped.append((name, "empty"))
            return
        if len(data) > MAX_FILE_BYTES:
            self.skipped.append((name, AttachmentStatus.TOO_LARGE))
            return
        broken = any(isinstance(d, _BASE64_DEFECTS) for d in part.defects)
        if broken:
            self.files.append(Found(name, data, AttachmentStatus.BROKEN_ENCODING))
            return
        if is_tiny_image(data):
            self.skipped.append((name, "small image"))
            return
        if zips.is_archive(data):
            self.files.append(_archive(name, data))
            return
        self.files.append(Found(name, data))


def _document_like(ctype: str) -> bool:
    return ctype.startswith("image/") or ctype in _DOCUMENT_TYPES


def _archive(name: str, data: bytes) -> Found:
    expanded = zips.expand(data)
    if expanded.refused is not None:
        return Found(name, data, expanded.refused)
    members: list[Found] = []
    for index, (member_name, content) in enumerate(expanded.members, start=1):
        if not content or is_tiny_image(content):
            continue
        members.append(Found(attachment_name(member_name, f"{name}-{index}"), content))
    return Found(name, data, members=members)


def _parse_bytes(data: bytes | mmap.mmap) -> Message:
    """Small messages through the `email` parser (lenient with any oddity), large ones through
    the scanner of `intake.mimestream` (C-speed, about one decoded file of memory)."""
    if len(data) <= SCAN_FROM_BYTES:
        return BytesParser(policy=PARSE_POLICY).parsebytes(bytes(data))
    return mimestream.scan(data, PARSE_POLICY)


def parse_message(source: Path | bytes) -> ParsedMail:
    """Parse a stored raw message (a path, or the bytes) into what Postroom records.

    UnreadableMessage when its structure is beyond the limits (MAX_NESTING multipart levels,
    `mimestream.MAX_PARTS` parts): the parsers recurse per level, so a message nested a
    thousand deep must end here, as a refusal, not as a RecursionError a sender would retry.
    """
    try:
        return _parse_message(source)
    except RecursionError:
        raise UnreadableMessage(f"MIME parts nested deeper than {MAX_NESTING} levels.") from None
    except errors.MessageParseError as exc:
        raise UnreadableMessage(f"Unreadable MIME structure: {exc}.") from None


def _parse_message(source: Path | bytes) -> ParsedMail:
    if isinstance(source, bytes):
        return _parsed(_parse_bytes(source))
    with open(source, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return _parsed(_parse_bytes(b""))
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return _parsed(_parse_bytes(mapped))


def _parsed(message: Any) -> ParsedMail:
    walker = _Walker()
    walker.walk(message, 0)
    headers = {name: _header(message, name) for name in RIR_HEADERS}
    message_id = headers.get("message-id") or None
    return ParsedMail(
        subject=_header(message, "subject"),
        sender=_sender(message),
        to=_addresses(message, "to"),
        cc=_addresses(message, "cc"),
        message_id=message_id[:998] if message_id else None,
        headers={k: v for k, v in headers.items() if v},
        body_text_plain=shorten_body(walker.plain or ""),
        body_text_html=shorten_body(walker.html or ""),
        auto_submitted=_is_auto_submitted(message),
        files=walker.files,
        skipped=walker.skipped,
    )
