"""The byte-level pieces of the SMTP intake, checked against references on real data: the DATA
dot-stream decoder against aiosmtpd's line-based rules, and the large-message MIME scanner
against the `email` package; plus a large message sent over SMTP end to end."""

from __future__ import annotations

import random
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from postroom.intake import mime as parse
from postroom.intake import mimestream
from postroom.smtp.dotstream import DotDecoder
from postroom.status import AttachmentStatus
from tests.conftest import RunningServer
from tests.smtp_support import (
    documents_of,
    emails,
    inbox_address,
    message,
    pdf_bytes,
    png_bytes,
    send,
    zip_bytes,
)


def _line_reference(stream: bytes) -> tuple[bytes, bytes]:
    """RFC 5321 §4.5.2 the way aiosmtpd reads DATA: CRLF lines, '.' alone ends, one dot unstuffed."""
    data, position = [], 0
    while True:
        end = stream.index(b"\r\n", position) + 2
        line, position = stream[position:end], end
        if line == b".\r\n":
            return b"".join(data), stream[position:]
        data.append(line[1:] if line.startswith(b".") else line)


def _stuffed(body: bytes) -> bytes:
    lines = body.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


def test_dot_decoder_matches_line_rules_on_random_streams() -> None:
    """Random bodies full of dots, CRs and bare LFs, cut into random blocks, decode exactly as the line-based reference (no bare-LF end: CVE-2024-27305)."""
    rng = random.Random(4)
    pieces = [b".", b"\r\n", b"\n", b"\r", b"a", b"..", b"\r\n.", b"\n.\n", b"\r\n.\r"]
    for _ in range(3000):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
        wire = (_stuffed(body[:-2]) + b"\r\n" if body else b"") + b".\r\nQUIT\r\n"
        expected, expected_rest = _line_reference(wire)
        decoder, out, position, rest = DotDecoder(), b"", 0, None
        while rest is None:
            size = rng.randint(1, 9)
            payload, rest = decoder.feed(wire[position : position + size])
            position += size
            out += payload
        assert out == expected
        assert rest + wire[position:] == expected_rest


def _shapes() -> list[bytes]:
    inner = message("q@example.com", attachments=[("in.pdf", pdf_bytes(), "application/pdf")])
    mixed = message(
        "x@example.com",
        attachments=[
            ("a.pdf", pdf_bytes(), "application/pdf"),
            ("s.png", png_bytes(300, 200), "image/png"),
        ],
    )
    forwarded = message("x@example.com")
    forwarded.add_attachment(inner)
    eml = message("x@example.com")
    eml.add_attachment(
        inner.as_bytes(), maintype="application", subtype="octet-stream", filename="f.eml"
    )
    archive = message(
        "x@example.com",
        attachments=[
            ("z.zip", zip_bytes({"a.pdf": pdf_bytes(), "b.pdf": pdf_bytes()}), "application/zip")
        ],
    )
    alternative = EmailMessage()
    alternative["From"] = "a@example.com"
    alternative.set_content("text")
    alternative.add_alternative("<p>html</p>", subtype="html")
    alternative.add_attachment(pdf_bytes(), maintype="application", subtype="pdf", filename="p.pdf")
    printable = EmailMessage()
    printable["From"] = "a@example.com"
    printable.set_content("café " * 300, cte="quoted-printable")
    printable.add_attachment("x=y é\n" * 100, filename="n.txt", cte="quoted-printable")
    unclosed = (
        b'From: a@example.com\nContent-Type: multipart/mixed; boundary="B"\n\n--B\n'
        b'Content-Type: application/pdf\nContent-Disposition: attachment; filename="y.pdf"\n\n'
        b"%PDF-1.4 body\n"
    )
    crlf = archive.as_bytes(policy=archive.policy.clone(linesep="\r\n"))
    return [
        mixed.as_bytes(),
        forwarded.as_bytes(),
        eml.as_bytes(),
        crlf,
        alternative.as_bytes(),
        printable.as_bytes(),
        unclosed,
        b"From: a@example.com\r\nSubject: plain\r\n\r\nhello\r\n",
    ]


@pytest.mark.parametrize("index", range(8))
def test_scanner_agrees_with_the_email_package(index: int) -> None:
    """For each message shape, the scanner used for large messages finds the same files, names, bodies and headers as the `email` package."""
    raw = _shapes()[index]
    by_email = parse._parsed(BytesParser(policy=parse.PARSE_POLICY).parsebytes(raw))
    by_scan = parse._parsed(mimestream.scan(raw, parse.PARSE_POLICY))

    def files(parsed: parse.ParsedMail) -> list[object]:
        return [
            (f.name, f.data, f.status, [(m.name, m.data) for m in f.members or []])
            for f in parsed.files
        ]

    assert files(by_scan) == files(by_email)
    for field in (
        "subject",
        "sender",
        "to",
        "message_id",
        "headers",
        "body_text_plain",
        "body_text_html",
    ):
        assert getattr(by_scan, field) == getattr(by_email, field), field


def test_scanner_flags_broken_base64() -> None:
    """A base64 body with characters outside the alphabet is marked broken_encoding by the scanner too."""
    raw = (
        b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="x.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK!!!not*base64$$\r\n--B--\r\n"
    )
    (found,) = parse._parsed(mimestream.scan(raw, parse.PARSE_POLICY)).files
    assert found.status == AttachmentStatus.BROKEN_ENCODING


async def test_large_message_over_smtp_keeps_exact_bytes(server: RunningServer) -> None:
    """A 3 MB attachment (parsed by the scanner) arrives as a document with exactly the sent bytes."""
    inbox = await inbox_address(server)
    big = pdf_bytes() + random.Random(7).randbytes(3_000_000)
    await send(server, message(inbox, attachments=[("big.pdf", big, "application/pdf")]))
    (email,) = await emails(server)
    (document,) = await documents_of(server, email.id)
    stored = server.service.runtime.blobs.path_of(document.s3_name).read_bytes()  # type: ignore[union-attr]
    assert stored == big
    assert document.original_file_name == "big.pdf"
    assert email.body_text_plain.startswith("Please find")
