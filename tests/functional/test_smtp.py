"""The SMTP listener over real sessions: what it advertises, whom it accepts, size limits, and what
an accepted message becomes (email, upload, documents, annotations, jobs)."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest
import sqlalchemy as sa

from postroom.db import tables as t
from tests.conftest import Api, RunningServer
from tests.smtp_support import (
    SENDER,
    add_queue_with_inbox,
    documents_of,
    emails,
    inbox_address,
    message,
    pdf_bytes,
    rows,
    send,
    send_with_smtplib,
    set_queue,
    wait_for,
)


async def _client(server: RunningServer) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.smtp_port, timeout=30)
    await client.connect()
    await client.ehlo()
    return client


async def test_ehlo_advertises_size_8bitmime_smtputf8_enhancedstatuscodes(
    server: RunningServer,
) -> None:
    """EHLO lists SIZE with the configured limit, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES; no AUTH, no STARTTLS without a certificate."""
    client = await _client(server)
    try:
        extensions = client.esmtp_extensions
        assert extensions["size"] == str(server.settings.smtp.max_message_bytes)
        for name in ("8bitmime", "smtputf8", "enhancedstatuscodes"):
            assert name in extensions
        assert "auth" not in extensions
        assert "starttls" not in extensions
    finally:
        await client.quit()


async def test_smtplib_pdf_becomes_email_document_and_annotation(
    server: RunningServer, admin: Api
) -> None:
    """A multipart/mixed mail with a PDF sent by smtplib gets 250 and yields one email, one document and one annotation with its job."""
    inbox = await inbox_address(server)
    msg = message(inbox, attachments=[("invoice.pdf", pdf_bytes(), "application/pdf")])
    refused = await asyncio.to_thread(send_with_smtplib, server.smtp_port, msg)
    assert refused == {}
    (email,) = await emails(server)
    assert (email.queue_id, email.type, email.subject) == (1, "incoming", "Invoice 42")
    assert (email.from_email, email.from_name) == (SENDER, "Supplier Ltd")
    (document,) = await documents_of(server, email.id)
    assert (document.original_file_name, document.mime_type) == ("invoice.pdf", "application/pdf")
    assert document.attachment_status is None
    (upload,) = await rows(server, t.uploads)
    assert upload.email_id == email.id and document.upload_id == upload.id
    (annotation,) = await rows(server, t.annotations)
    assert (annotation.document_id, annotation.email_id) == (document.id, email.id)
    (job,) = await rows(server, t.jobs, t.jobs.c.annotation_id == annotation.id)
    assert job.payload["rir_values"]["email_header:subject"] == "Invoice 42"
    status, body = await admin.get(f"/emails/{email.id}")
    assert status == 200
    assert body["documents"] == [f"{server.api_url}/documents/{document.id}"]
    assert body["annotations"] == [f"{server.api_url}/annotations/{annotation.id}"]


async def test_mail_reaches_to_review_through_the_pipeline(
    server: RunningServer, admin: Api
) -> None:
    """The annotation of a mailed PDF leaves importing for to_review once the pipeline ran."""
    inbox = await inbox_address(server)
    await send(server, message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")]))
    (annotation,) = await rows(server, t.annotations)

    async def reviewed() -> bool:
        status, body = await admin.get(f"/annotations/{annotation.id}")
        return status == 200 and body["status"] == "to_review"

    await wait_for(reviewed)


async def test_unknown_recipient_is_550_511_and_nothing_is_relayed(server: RunningServer) -> None:
    """RCPT to an address that is no inbox (local or foreign) is refused with 550 5.1.1."""
    client = await _client(server)
    try:
        await client.mail(SENDER)
        for address in ("nobody@localhost", "someone@gmail.com"):
            with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
                await client.rcpt(address)
            assert refused.value.code == 550
            assert refused.value.message.startswith("5.1.1 ")
    finally:
        await client.quit()
    assert await emails(server) == []


async def test_recipient_matches_case_insensitively(server: RunningServer) -> None:
    """An inbox address written in upper case is accepted (250 2.1.5)."""
    inbox = await inbox_address(server)
    client = await _client(server)
    try:
        await client.mail(SENDER)
        response = await client.rcpt(inbox.upper())
        assert response.code == 250 and response.message.startswith("2.1.5")
    finally:
        await client.quit()


async def test_queue_being_deleted_is_550_521(server: RunningServer) -> None:
    """RCPT to the inbox of a queue whose deletion was requested answers 550 5.2.1."""
    inbox = await inbox_address(server)
    await set_queue(server, status="deletion_requested")
    client = await _client(server)
    try:
        await client.mail(SENDER)
        with pytest.raises(aiosmtplib.SMTPRecipientRefused) as refused:
            await client.rcpt(inbox)
        assert (refused.value.code, refused.value.message[:6]) == (550, "5.2.1 ")
    finally:
        await client.quit()


async def test_mail_size_parameter_over_limit_is_552_534(server: RunningServer) -> None:
    """MAIL FROM with SIZE= above the advertised limit answers 552 5.3.4."""
    client = await _client(server)
    try:
        limit = server.settings.smtp.max_message_bytes
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await client.mail(SENDER, options=[f"SIZE={limit + 1}"])
        assert (refused.value.code, refused.value.message[:6]) == (552, "5.3.4 ")
        accepted = await client.mail(SENDER, options=[f"SIZE={limit}"])
        assert accepted.code == 250
    finally:
        await client.quit()


async def test_data_over_limit_is_552_and_leaves_nothing(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A message larger than smtp.max_message_bytes is read to its end, answered 552 5.3.4, leaves no record or temp file, and the session goes on."""
    server = await server_factory(POSTROOM_SMTP_MAX_MESSAGE_BYTES="4096")
    inbox = await inbox_address(server)
    big = message(inbox, attachments=[("big.pdf", pdf_bytes() + b"x" * 8000, "application/pdf")])
    client = await _client(server)
    try:
        await client.mail(SENDER)
        await client.rcpt(inbox)
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.data(big.as_bytes())
        assert (refused.value.code, refused.value.message[:6]) == (552, "5.3.4 ")
        small = message(inbox, body="small one, no attachment")
        await client.sendmail(SENDER, [inbox], small.as_bytes())
    finally:
        await client.quit()
    (stored,) = await emails(server)
    assert stored.body_text_plain.startswith("small one")
    await asyncio.sleep(0.1)  # the detached clean-up of the refused spool file
    assert list((server.data_dir / "tmp").iterdir()) == []


async def test_null_sender_is_accepted(server: RunningServer) -> None:
    """MAIL FROM:<> (a bounce) is accepted and stored; no notice is addressed to it."""
    inbox = await inbox_address(server)
    await send(server, message(inbox, sender="MAILER-DAEMON <>", body="bounce"), sender="")
    (stored,) = await emails(server)
    assert stored.notification_status == "not_sent: null sender"


async def test_resent_message_is_stored_once(server: RunningServer) -> None:
    """The same message (Message-ID and bytes) delivered twice gets 250 both times and is stored once."""
    inbox = await inbox_address(server)
    msg = message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
    raw = msg.as_bytes()
    for _ in range(2):
        await send(server, raw, recipients=[inbox])
    assert len(await emails(server)) == 1
    assert len(await rows(server, t.annotations)) == 1


async def test_two_recipient_inboxes_get_one_email_each(server: RunningServer) -> None:
    """A message to two inboxes becomes one email per inbox; the inbox missing from the headers is in bcc."""
    first = await inbox_address(server)
    queue_id, second = await add_queue_with_inbox(server, "Receipts")
    msg = message(first, attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
    await send(server, msg, recipients=[first, second])
    stored = await emails(server)
    assert sorted(e.queue_id for e in stored) == [1, queue_id]
    by_queue = {e.queue_id: e for e in stored}
    assert by_queue[1].bcc == []
    assert by_queue[queue_id].bcc == [{"email": second, "name": ""}]
    annotations = await rows(server, t.annotations)
    assert sorted(a.queue_id for a in annotations) == [1, queue_id]


async def test_pipelined_commands_and_dot_stuffing(server: RunningServer) -> None:
    """Commands pipelined in one write around DATA are all answered; stuffed dots are undone; a bare LF dot does not end the data."""
    inbox = await inbox_address(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.smtp_port)
    body = (
        b"Subject: dots\r\nMessage-ID: <dots@example.com>\r\n\r\n"
        b"..leading dot\r\nsmuggled?\n.\nstill data\r\n"
    )
    writer.write(
        b"EHLO client.test\r\n"
        + f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{inbox}>\r\nDATA\r\n".encode()
        + body
        + b".\r\nNOOP\r\nQUIT\r\n"
    )
    await writer.drain()
    transcript = (await asyncio.wait_for(reader.read(), 30)).decode()
    writer.close()
    codes = [line[:3] for line in transcript.splitlines() if line[3:4] == " "]
    assert codes == ["220", "250", "250", "250", "354", "250", "250", "221"]
    (stored,) = await emails(server)
    raw = server.service.runtime.blobs.path_of(stored.raw_blob).read_bytes()  # type: ignore[union-attr]
    assert raw.endswith(b"\r\n.leading dot\r\nsmuggled?\n.\nstill data\r\n")


async def test_replies_carry_enhanced_status_codes(server: RunningServer) -> None:
    """Sequence and syntax errors of the stock protocol get enhanced codes too (503 5.5.1, 501 5.5.4)."""
    client = await _client(server)
    try:
        response = await client.execute_command(b"RCPT", b"TO:<x@localhost>")
        assert (response.code, response.message[:6]) == (503, "5.5.1 ")
        response = await client.execute_command(b"MAIL", b"FROM:<a@b.c> SIZE=abc")
        assert (response.code, response.message[:6]) == (501, "5.5.4 ")
        response = await client.noop()
        assert response.message.startswith("2.0.0")
    finally:
        await client.quit()


async def test_deleted_queue_between_rcpt_and_data_is_refused(server: RunningServer) -> None:
    """When the queue's deletion starts after RCPT, DATA is answered 550 5.2.1 and nothing is stored."""
    inbox = await inbox_address(server)
    client = await _client(server)
    try:
        await client.mail(SENDER)
        await client.rcpt(inbox)
        await set_queue(server, status="deletion_requested")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await client.data(message(inbox).as_bytes())
        assert (refused.value.code, refused.value.message[:6]) == (550, "5.2.1 ")
    finally:
        await client.quit()
    assert await emails(server) == []


async def test_records_are_committed_before_250(server: RunningServer) -> None:
    """Right after the 250 the email row and the raw blob are both there (no later completion)."""
    inbox = await inbox_address(server)
    msg = message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
    raw = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    await send(server, raw, recipients=[inbox])
    services = server.service.runtime
    assert services is not None
    async with services.db.reading() as conn:
        raw_key = await conn.scalar(sa.select(t.emails.c.raw_blob))
        document_key = await conn.scalar(sa.select(t.documents.c.s3_name))
    assert services.blobs.path_of(raw_key).read_bytes() == raw
    assert services.blobs.path_of(document_key).exists()


async def test_email_values_fill_datapoints(server: RunningServer, admin: Api) -> None:
    """Datapoints whose rir_field_names name email_header:subject / email_header:from / email_body:text_plain get those values once the annotation reaches to_review."""
    services = server.service.runtime
    assert services is not None
    async with services.db.reading() as conn:
        content = await conn.scalar(sa.select(t.schemas.c.content).where(t.schemas.c.id == 1))
    extra = [
        ("mail_subject", "email_header:subject"),
        ("mail_from", "email_header:from"),
        ("mail_body", "email_body:text_plain"),
    ]
    content[0]["children"] += [
        {
            "category": "datapoint",
            "id": schema_id,
            "label": schema_id,
            "type": "string",
            "rir_field_names": [rir],
            "constraints": {"required": False},
            "default_value": None,
        }
        for schema_id, rir in extra
    ]
    async with services.db.transaction() as conn:
        await conn.execute(sa.update(t.schemas).where(t.schemas.c.id == 1).values(content=content))
    inbox = await inbox_address(server)
    msg = message(inbox, subject="PO 7731", attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
    await send(server, msg)
    (annotation,) = await rows(server, t.annotations)

    async def reviewed() -> bool:
        _, body = await admin.get(f"/annotations/{annotation.id}")
        return body["status"] == "to_review"

    await wait_for(reviewed)
    _, tree = await admin.get(f"/annotations/{annotation.id}/content")
    values = {
        node["schema_id"]: node["content"]["value"]
        for section in tree["content"]
        for node in section["children"]
        if node.get("category") == "datapoint"
    }
    assert values["mail_subject"] == "PO 7731"
    assert values["mail_from"] == f"Supplier Ltd <{SENDER}>"
    assert values["mail_body"].startswith("Please find the invoice")
