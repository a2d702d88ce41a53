"""What a mailed message's MIME structure becomes: which parts are files, their names and types,
zip archives, attached messages, signature logos, broken encodings and the queue's type filter.
Each message is built with the `email` package and sent over a real SMTP session."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from postroom.db import tables as t
from tests.conftest import RunningServer
from tests.smtp_support import (
    SENDER,
    documents_of,
    emails,
    inbox_address,
    message,
    pdf_bytes,
    png_bytes,
    rows,
    send,
    set_queue,
    zip_bytes,
)


async def _deliver(server: RunningServer, msg: EmailMessage | bytes) -> tuple[object, list]:
    """Send to the first queue's inbox; return (the email row, its document rows)."""
    inbox = await inbox_address(server)
    if isinstance(msg, EmailMessage):
        if "To" not in msg:
            msg["To"] = inbox
        await send(server, msg)
    else:
        await send(server, msg, recipients=[inbox])
    (email,) = await emails(server)
    return email, await documents_of(server, email.id)


async def test_inline_pdf_without_file_name_is_a_document(server: RunningServer) -> None:
    """A PDF part sent inline with no file name (as Apple Mail does) becomes a document."""
    msg = message("x@localhost")
    del msg["To"]
    msg.add_attachment(pdf_bytes(), maintype="application", subtype="pdf", disposition="inline")
    for part in msg.iter_attachments():
        del part["Content-Disposition"]
        part["Content-Disposition"] = "inline"
    _email, (document,) = await _deliver(server, msg)
    assert document.mime_type == "application/pdf"
    assert document.original_file_name == "attachment-1.pdf"


async def test_nested_rfc822_message_is_walked(server: RunningServer) -> None:
    """A forwarded message (message/rfc822) is opened and its PDF becomes a document."""
    inner = message(
        "someone@example.com", attachments=[("inner.pdf", pdf_bytes(), "application/pdf")]
    )
    outer = message("x@localhost", subject="Fwd: invoice")
    del outer["To"]
    outer.add_attachment(inner)
    email, (document,) = await _deliver(server, outer)
    assert document.original_file_name == "inner.pdf"
    assert email.subject == "Fwd: invoice"


async def test_eml_file_attachment_is_walked(server: RunningServer) -> None:
    """An attached `.eml` file sent as application/octet-stream is parsed for its own files."""
    inner = message(
        "someone@example.com", attachments=[("deep.pdf", pdf_bytes(), "application/pdf")]
    )
    outer = message("x@localhost")
    del outer["To"]
    outer.add_attachment(
        inner.as_bytes(), maintype="application", subtype="octet-stream", filename="fwd.eml"
    )
    _email, (document,) = await _deliver(server, outer)
    assert document.original_file_name == "deep.pdf"


async def test_zip_archive_is_expanded(server: RunningServer) -> None:
    """A zip's root files become documents (sub-folders are not processed); the zip itself is not a document."""
    archive = zip_bytes({"a.pdf": pdf_bytes(), "b.pdf": pdf_bytes(), "sub/c.pdf": pdf_bytes()})
    msg = message("x@localhost", attachments=[("invoices.zip", archive, "application/zip")])
    del msg["To"]
    _email, documents = await _deliver(server, msg)
    assert sorted(d.original_file_name for d in documents) == ["a.pdf", "b.pdf"]
    assert {d.attachment_status for d in documents} == {None}


async def test_zip_with_one_top_folder_is_expanded(server: RunningServer) -> None:
    """When a zip's root holds only one folder, that folder's files are taken."""
    archive = zip_bytes({"scans/one.pdf": pdf_bytes(), "scans/two.pdf": pdf_bytes()})
    msg = message("x@localhost", attachments=[("scans.zip", archive, "application/zip")])
    del msg["To"]
    _email, documents = await _deliver(server, msg)
    assert sorted(d.original_file_name for d in documents) == ["one.pdf", "two.pdf"]


async def test_zip_bomb_is_kept_filtered(server: RunningServer) -> None:
    """A zip inflating beyond 40 MB is not expanded: it stays one document with attachment_status zip_too_large and no annotation."""
    archive = zip_bytes({"zeros.bin": b"\0" * 41_000_000})
    msg = message("x@localhost", attachments=[("bomb.zip", archive, "application/zip")])
    del msg["To"]
    _email, (document,) = await _deliver(server, msg)
    assert document.attachment_status == "zip_too_large"
    assert await rows(server, t.annotations) == []


async def test_zip_with_extreme_ratio_is_a_bomb(server: RunningServer) -> None:
    """An entry that inflates more than 200:1 beyond 1 MiB is refused as zip_bomb."""
    archive = zip_bytes({"zeros.bin": b"\0" * 5_000_000, "a.pdf": pdf_bytes()})
    msg = message("x@localhost", attachments=[("bomb.zip", archive, "application/zip")])
    del msg["To"]
    _email, (document,) = await _deliver(server, msg)
    assert document.attachment_status == "zip_bomb"


async def test_tiny_logo_is_ignored_and_larger_image_kept(server: RunningServer) -> None:
    """A 64x32 signature logo referenced by cid: is dropped; a 320x200 image is a document."""
    msg = message("x@localhost")
    del msg["To"]
    msg.add_alternative('<p>Hi</p><img src="cid:logo@x">', subtype="html")
    msg.add_attachment(png_bytes(64, 32), maintype="image", subtype="png", filename="logo.png")
    msg.add_attachment(png_bytes(320, 200), maintype="image", subtype="png", filename="scan.png")
    email, (document,) = await _deliver(server, msg)
    assert document.original_file_name == "scan.png"
    assert "<img" in email.body_text_html


async def test_utf8_and_rfc2047_file_names(server: RunningServer) -> None:
    """RFC 2231 (UTF-8) and RFC 2047 encoded names are decoded; a slash becomes an underscore."""
    outer = MIMEMultipart()
    outer["From"] = SENDER
    outer["Subject"] = "=?utf-8?q?Rechnung_f=C3=BCr_M=C3=A4rz?="
    outer.attach(MIMEText("body", "plain", "utf-8"))
    first = MIMEApplication(pdf_bytes(), "pdf")
    first.add_header(
        "Content-Disposition", "attachment", filename=("utf-8", "", "Fäktura 3/2026.pdf")
    )
    outer.attach(first)
    second = MIMEApplication(pdf_bytes(), "pdf")
    second["Content-Disposition"] = 'attachment; filename="=?utf-8?b?0YHRh9C10YIucGRm?="'
    outer.attach(second)
    inbox = await inbox_address(server)
    outer["To"] = inbox
    email, documents = await _deliver(server, outer.as_bytes())
    assert [d.original_file_name for d in documents] == ["Fäktura 3_2026.pdf", "счет.pdf"]
    assert email.subject == "Rechnung für März"


async def test_part_without_content_type_is_sniffed(server: RunningServer) -> None:
    """An attachment with no Content-Type header (so text/plain by default) but PDF bytes is a PDF document."""
    inbox = await inbox_address(server)
    boundary = "BOUNDARY42"
    encoded = base64.encodebytes(pdf_bytes()).decode()
    raw = (
        f"From: {SENDER}\r\nTo: {inbox}\r\nSubject: no type\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        f"--{boundary}\r\n\r\nbody text\r\n"
        f'--{boundary}\r\nContent-Disposition: attachment; filename="scan.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--{boundary}--\r\n"
    ).encode()
    email, (document,) = await _deliver(server, raw)
    assert document.mime_type == "application/pdf"
    assert email.body_text_plain.strip() == "body text"


async def test_broken_base64_is_kept_without_annotation(server: RunningServer) -> None:
    """An attachment whose base64 is broken is recorded as a document with attachment_status broken_encoding, and no annotation."""
    inbox = await inbox_address(server)
    raw = (
        f"From: {SENDER}\r\nTo: {inbox}\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        '--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="x.pdf"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK!!!not*base64$$\r\n--B--\r\n"
    ).encode()
    _email, (document,) = await _deliver(server, raw)
    assert document.attachment_status == "broken_encoding"
    assert await rows(server, t.annotations) == []


async def test_no_attachment_keeps_the_email(server: RunningServer) -> None:
    """A plain text mail is stored with its body and no documents."""
    msg = message("x@localhost", body="Just a question about my invoice.")
    del msg["To"]
    email, documents = await _deliver(server, msg)
    assert documents == []
    assert email.body_text_plain.startswith("Just a question")
    assert email.notification_status == "not_sent: no relay configured"


async def test_type_not_accepted_by_queue_is_filtered(server: RunningServer) -> None:
    """With accepted_mime_types [application/pdf], a PNG attachment is kept as a document with attachment_status unsupported_mime_type."""
    await set_queue(server, settings={"accepted_mime_types": ["application/pdf"]})
    msg = message(
        "x@localhost",
        attachments=[
            ("scan.png", png_bytes(400, 300), "image/png"),
            ("invoice.pdf", pdf_bytes(), "application/pdf"),
        ],
    )
    del msg["To"]
    _email, documents = await _deliver(server, msg)
    statuses = {d.original_file_name: d.attachment_status for d in documents}
    assert statuses == {"scan.png": "unsupported_mime_type", "invoice.pdf": None}
    (annotation,) = await rows(server, t.annotations)
    assert annotation.document_id == next(
        d.id for d in documents if d.original_file_name == "invoice.pdf"
    )


async def test_long_bodies_are_shortened_to_4_kb(server: RunningServer) -> None:
    """body_text_plain is cut to 4096 bytes of UTF-8, never in the middle of a character."""
    msg = message("x@localhost", body="é" * 5000)
    del msg["To"]
    email, _documents = await _deliver(server, msg)
    assert len(email.body_text_plain.encode("utf-8")) <= 4096
    assert set(email.body_text_plain) == {"é"}


async def test_header_values_reach_the_import_job(server: RunningServer) -> None:
    """email_header:* and email_body:text_plain values travel with the annotation's import job."""
    msg = message("x@localhost", attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
    del msg["To"]
    msg["Reply-To"] = "billing@example.com"
    email, _documents = await _deliver(server, msg)
    (job,) = await rows(server, t.jobs)
    values = job.payload["rir_values"]
    assert values["email_header:from"] == f"Supplier Ltd <{SENDER}>"
    assert values["email_header:reply-to"] == "billing@example.com"
    assert values["email_header:message-id"] == email.message_id
    assert values["email_header:date"] == "Sat, 28 Nov 2026 10:00:00 +0000"
    assert values["email_body:text_plain"].startswith("Please find")
