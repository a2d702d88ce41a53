"""Large messages: the MIME tree found by scanning the raw bytes, bodies decoded at C speed.

The `email` package reads a message line by line in Python and keeps every line as an object:
a 30 MiB message took seconds of CPU (holding the GIL) and about 8x its size in memory. Here the
stored message is memory-mapped; part boundaries are found with `find` on the mapped bytes,
only the small header blocks go through the `email` header parser, and each leaf body is
decoded in slices (`binascii`), so memory is about one decoded file at a time.

The result is a tree of ordinary `email.message.Message` objects whose leaves already hold
their decoded bytes (`DecodedPart`): `smtp.parse` walks it with the same rules as small
messages. Anything the scanner cannot make sense of (no closing boundary, say) is left as it is
found: a multipart without its boundary becomes one opaque leaf, as the `email` package does.
"""

from __future__ import annotations

import binascii
import contextlib
import re
from email import errors
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import Compat32
from typing import Any

_SLICE = 1024 * 1024  # raw bytes decoded per step: each C call holds the GIL ~ms
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")
_WHITESPACE = b" \t\r\n"
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
MAX_PARTS = 10_000


class DecodedPart(Message):
    """A leaf part whose body was decoded while scanning."""

    def __init__(self, policy: Compat32) -> None:
        super().__init__(policy)
        self.decoded = b""

    def get_payload(self, i: Any = None, decode: bool = False) -> Any:
        if decode:
            return self.decoded
        return super().get_payload(i, decode)


def _header_end(data: Any, start: int, end: int) -> tuple[int, int]:
    """(end of the header block, start of the body) for a part starting at `start`."""
    if data[start : start + 2] == b"\r\n":
        return start, start + 2
    if data[start : start + 1] == b"\n":
        return start, start + 1
    crlf = data.find(b"\r\n\r\n", start, end)
    # Look for a bare-LF blank line only before the CRLF one (not through a whole large body).
    lf = data.find(b"\n\n", start, crlf + 2 if crlf >= 0 else end)
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return crlf + 2, crlf + 4
    if lf >= 0:
        return lf + 1, lf + 2
    return end, end  # headers only


def _strip_line_end(data: Any, start: int, end: int) -> int:
    """`end` moved before the line break that belongs to the following delimiter."""
    if end - 2 >= start and data[end - 2 : end] == b"\r\n":
        return end - 2
    if end - 1 >= start and data[end - 1 : end] == b"\n":
        return end - 1
    return end


class Scanner:
    def __init__(self, data: Any, policy: Compat32) -> None:
        self.data = data  # bytes or an mmap
        self.policy = policy
        self.parts = 0

    def message(self, start: int, end: int, depth: int = 0) -> Message:
        """The part (or message) occupying data[start:end]."""
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise errors.MessageParseError("too many MIME parts")
        headers_end, body_start = _header_end(self.data, start, end)
        header_bytes = bytes(self.data[start:headers_end])
        shell = BytesHeaderParser(policy=self.policy).parsebytes(header_bytes)
        ctype = shell.get_content_type()
        if shell.get_content_maintype() == "multipart":
            children = self._children(shell, body_start, end, depth)
            if children is not None:
                shell.set_payload(children)
                return shell
        elif ctype == "message/rfc822" and _plain_encoding(shell):
            shell.set_payload([self.message(body_start, end, depth + 1)])
            return shell
        return self._leaf(shell, body_start, end)

    def _children(
        self, shell: Message, start: int, end: int, depth: int
    ) -> list[Message | str] | None:
        boundary = shell.get_boundary()
        if not boundary:
            return None
        delimiter = b"--" + boundary.encode("latin-1", "replace")
        positions = self._delimiters(delimiter, start, end)
        if not positions:
            return None
        children: list[Message | str] = []
        for (line_start, after), following in zip(positions, [*positions[1:], None], strict=True):
            if self.data[line_start + len(delimiter) : line_start + len(delimiter) + 2] == b"--":
                break  # the close delimiter: what follows is the epilogue
            # Without a close delimiter the last part runs to the end, less its final line break.
            part_end = _strip_line_end(self.data, after, end if following is None else following[0])
            children.append(self.message(after, part_end, depth))
        return children

    def _delimiters(self, delimiter: bytes, start: int, end: int) -> list[tuple[int, int]]:
        """(start of the delimiter line, start of the next line) for each delimiter line."""
        found: list[tuple[int, int]] = []
        position = start
        while position < end:
            hit = self.data.find(delimiter, position, end)
            if hit < 0:
                break
            after_delimiter = self.data[hit + len(delimiter) : hit + len(delimiter) + 1]
            at_line_start = (hit == start or self.data[hit - 1 : hit] == b"\n") and (
                after_delimiter in (b"", b"-", b"\r", b"\n", b" ", b"\t")
            )
            line_end = self.data.find(b"\n", hit, end)
            next_line = end if line_end < 0 else line_end + 1
            if at_line_start:
                found.append((hit, next_line))
            position = next_line
        return found

    def _leaf(self, shell: Message, start: int, end: int) -> DecodedPart:
        part = DecodedPart(self.policy)
        for name, value in shell.raw_items():
            part[name] = value
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if encoding == "base64":
            part.decoded, broken = _base64(self.data, start, end)
            if broken:
                part.defects.append(errors.InvalidBase64CharactersDefect())
        elif encoding == "quoted-printable":
            part.decoded = _quoted_printable(self.data, start, end)
        else:
            part.decoded = bytes(self.data[start:end])
        return part


def _plain_encoding(shell: Message) -> bool:
    encoding = str(shell.get("content-transfer-encoding", "")).strip().lower()
    return encoding in ("", "7bit", "8bit", "binary")


def _base64(data: Any, start: int, end: int) -> tuple[bytes, bool]:
    out = bytearray()
    carry = b""
    broken = False
    for offset in range(start, end, _SLICE):
        chunk = carry + bytes(data[offset : min(offset + _SLICE, end)]).translate(None, _WHITESPACE)
        if chunk.translate(None, _BASE64_ALPHABET):  # anything left is not base64
            broken = True
            chunk = _NOT_BASE64.sub(b"", chunk)
        usable = len(chunk) - len(chunk) % 4
        carry = chunk[usable:]
        try:
            out += binascii.a2b_base64(chunk[:usable])
        except binascii.Error:
            broken = True
    if carry:
        broken = True
        with contextlib.suppress(binascii.Error):
            out += binascii.a2b_base64(carry + b"=" * (-len(carry) % 4))
    return bytes(out), broken


def _quoted_printable(data: Any, start: int, end: int) -> bytes:
    out = bytearray()
    position = start
    while position < end:
        stop = min(position + _SLICE, end)
        if stop < end:
            # Cut after a line break so no soft break or =XX escape is split.
            line_end = data.rfind(b"\n", position, stop)
            stop = line_end + 1 if line_end > position else stop
        out += binascii.a2b_qp(bytes(data[position:stop]))
        position = stop
    return bytes(out)


def scan(data: Any, policy: Compat32) -> Message:
    """The message held in `data` (bytes or an mmap) as a tree with decoded leaves."""
    return Scanner(data, policy).message(0, len(data))
