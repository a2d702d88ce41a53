"""The DATA phase as a byte stream: find the end-of-data marker and undo dot-stuffing, block by block.

RFC 5321 §4.5.2: the client doubles a dot that starts a line, and ends the data with a line that
holds a single dot. Only `CRLF . CRLF` ends the data — never a bare LF (the SMTP smuggling fix of
CVE-2024-27305 that aiosmtpd also keeps). The data is seen as if it were preceded by a CRLF, so a
message that is empty (".\r\n") or starts with a stuffed dot is handled by the same two rules:
end at `\r\n.\r\n`, and replace `\r\n.` by `\r\n`.

Blocks are scanned with `bytes.find` and `bytes.replace` (C speed); a few bytes at the end of a
block that might begin a marker are carried into the next block.
"""

from __future__ import annotations

END_MARKER = b"\r\n.\r\n"
_STUFFED = b"\r\n."
_LINE_START = b"\r\n"
# Longest tail that can be the start of END_MARKER without being all of it.
_TAIL = len(END_MARKER) - 1


class DotDecoder:
    """Feed raw DATA bytes; get back the message bytes, and what followed the end marker."""

    def __init__(self) -> None:
        # The virtual CRLF before the first line (stripped again from the first output).
        self._carry = _LINE_START
        self._to_strip = len(_LINE_START)
        self.done = False

    def feed(self, block: bytes) -> tuple[bytes, bytes | None]:
        """Decode one block: (message bytes, None) while the data goes on; (message bytes,
        bytes after the end marker) once it ended. The second value, possibly empty, is the
        client's next commands (pipelining) and belongs back to the command reader."""
        if self.done:
            raise RuntimeError("DotDecoder fed after the end of data")
        buf = self._carry + block
        end = buf.find(END_MARKER)
        if end >= 0:
            self.done = True
            self._carry = b""
            return self._emit(buf[: end + len(_LINE_START)]), buf[end + len(END_MARKER) :]
        cut = max(len(buf) - _TAIL, 0)
        # Never split a stuffed dot ("\r\n.") between the output and the carry: its CRLF would
        # be emitted now and its dot kept. The bytes after `cut` are known, so this is exact.
        if cut >= 2 and buf[cut - 2 : cut + 1] == _STUFFED:
            cut -= 2
        elif cut >= 1 and buf[cut - 1 : cut + 2] == _STUFFED:
            cut -= 1
        self._carry = buf[cut:]
        return self._emit(buf[:cut]), None

    def _emit(self, raw: bytes) -> bytes:
        out = raw.replace(_STUFFED, _LINE_START)
        if self._to_strip and out:
            stripped = min(self._to_strip, len(out))
            out = out[stripped:]
            self._to_strip -= stripped
        return out
