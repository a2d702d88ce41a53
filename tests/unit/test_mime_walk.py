"""Walking a message's MIME tree: which parts are files, which are bodies, what is skipped."""

from __future__ import annotations

from email.message import EmailMessage

from postroom.intake.mime import parse_message

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Supplier =?utf-8?q?s=2Er=2Eo=2E?= <billing@supplier.example>"
    message["To"] = "invoices-abc123@localhost"
    message["Subject"] = "=?utf-8?b?RmFrdHVyYSDEjS4gNDI=?="
    message["Message-ID"] = "<m1@supplier.example>"
    message.set_content("Please find the invoice attached.")
    message.add_alternative("<p>Please find the invoice attached.</p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    return message


def test_bodies_files_and_decoded_headers() -> None:
    parsed = parse_message(_message().as_bytes())
    assert parsed.subject == "Faktura č. 42"
    assert parsed.sender == {"email": "billing@supplier.example", "name": "Supplier s.r.o."}
    assert parsed.message_id == "<m1@supplier.example>"
    assert parsed.body_text_plain.strip() == "Please find the invoice attached."
    assert "<p>" in parsed.body_text_html
    assert [(f.name, f.data) for f in parsed.files] == [("invoice.pdf", PDF)]
    assert parsed.auto_submitted is False


def test_a_forwarded_message_is_walked_into() -> None:
    outer = EmailMessage()
    outer["From"] = "clerk@buyer.example"
    outer["To"] = "invoices-abc123@localhost"
    outer["Subject"] = "Fwd: invoice"
    outer.set_content("see below")
    outer.add_attachment(_message())
    parsed = parse_message(outer.as_bytes())
    assert [f.name for f in parsed.files] == ["invoice.pdf"]


def test_auto_submitted_mail_is_marked() -> None:
    message = _message()
    message["Auto-Submitted"] = "auto-replied"
    assert parse_message(message.as_bytes()).auto_submitted is True
