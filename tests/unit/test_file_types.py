"""Sniffing a file's type from its bytes, and the file-type rule a queue applies to it."""

from __future__ import annotations

import io
import zipfile

import pytest

from postroom.intake.sniff import mime_accepted, rejection_reason, sniff_mime

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108020000009077")


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (b"", "application/x-empty"),
        (
            _docx(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    ],
)
def test_the_type_comes_from_the_bytes(head: bytes, mime: str) -> None:
    assert sniff_mime(head) == mime


@pytest.mark.parametrize(
    ("mime", "patterns", "accepted"),
    [
        ("application/pdf", ["application/pdf"], True),
        ("Application/PDF", ["application/pdf"], True),
        ("image/png", ["image/*"], True),
        ("text/html", ["*/*"], True),
        ("text/html", ["image/*", "application/pdf"], False),
        ("application/pdfx", ["application/pdf"], False),
    ],
)
def test_accepted_patterns(mime: str, patterns: list[str], accepted: bool) -> None:
    assert mime_accepted(mime, patterns) is accepted


def test_a_queue_names_why_it_refuses_a_type() -> None:
    settings = {"accepted_mime_types": ["application/pdf"]}
    assert rejection_reason("application/pdf", settings) is None
    reason = rejection_reason("text/html", settings)
    assert reason is not None and "text/html" in reason and "accepted_mime_types" in reason
    # the default list (no setting) takes PDFs and images
    assert rejection_reason("application/pdf", {}) is None
    assert rejection_reason("image/png", None) is None
