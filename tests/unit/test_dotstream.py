"""SMTP DATA decoding: the end marker and dot-stuffing, however the stream is cut into blocks."""

from __future__ import annotations

import pytest

from postroom.smtp.dotstream import DotDecoder


def _decode(data: bytes, block: int) -> tuple[bytes, bytes | None]:
    decoder = DotDecoder()
    out, rest = b"", None
    for i in range(0, len(data), block):
        chunk, rest = decoder.feed(data[i : i + block])
        out += chunk
        if rest is not None:
            break
    return out, rest


@pytest.mark.parametrize("block", [1, 2, 3, 7, 4096])
def test_unstuffs_and_stops_at_the_marker_in_any_block_size(block: int) -> None:
    wire = b"Subject: x\r\n\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n"
    out, rest = _decode(wire, block)
    assert out == b"Subject: x\r\n\r\n.leading dot\r\nbody\r\n"
    assert rest is not None and b"QUIT\r\n".startswith(rest)  # what followed, up to block end


def test_a_bare_lf_dot_lf_does_not_end_the_data() -> None:
    """The SMTP smuggling rule (CVE-2024-27305): only CRLF . CRLF ends the data."""
    out, rest = _decode(b"a\n.\nMAIL FROM:<x@y>\r\n.\r\n", 4096)
    assert rest == b""
    assert b"MAIL FROM" in out


def test_an_empty_message() -> None:
    assert _decode(b".\r\n", 4096) == (b"", b"")
