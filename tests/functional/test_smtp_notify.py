"""Inbox sender filters and the "no processable attachment" notice, over real SMTP sessions; the
outbound relay is a real SMTP server run by the test."""

from __future__ import annotations

from email import message_from_bytes, policy

from postroom.db import tables as t
from tests.conftest import RunningServer
from tests.smtp_support import (
    SENDER,
    Relay,
    emails,
    inbox_address,
    message,
    pdf_bytes,
    rows,
    send,
    set_inbox_filters,
    set_queue,
    wait_for,
)


async def _status(server: RunningServer) -> str | None:
    (email,) = await emails(server)
    return email.notification_status if email.notification_status != "pending" else None


async def test_denied_sender_is_accepted_and_recorded_without_documents(
    server: RunningServer,
) -> None:
    """Mail from a denied sender gets 250 (no backscatter), is recorded as filtered, and creates no document."""
    await set_inbox_filters(server, {"denied_senders": ["*@example.com"]})
    inbox = await inbox_address(server)
    await send(server, message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")]))
    (email,) = await emails(server)
    assert email.filtered_reason == "sender_denied"
    assert email.notification_status is None
    assert await rows(server, t.documents) == []


async def test_allowed_senders_wildcards(server: RunningServer) -> None:
    """allowed_senders with ? and * lets matching senders through and filters the others."""
    await set_inbox_filters(server, {"allowed_senders": ["supplier@example.co?", "*@trusted.org"]})
    inbox = await inbox_address(server)
    for sender in (SENDER, "anyone@trusted.org", "stranger@example.org"):
        msg = message(inbox, sender=sender, attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
        await send(server, msg, sender=sender)
    reasons = {e.from_email: e.filtered_reason for e in await emails(server)}
    assert reasons == {
        SENDER: None,
        "anyone@trusted.org": None,
        "stranger@example.org": "sender_not_allowed",
    }
    assert len(await rows(server, t.annotations)) == 2


async def test_no_attachment_notice_goes_through_the_relay(
    relayed: RunningServer, relay: Relay
) -> None:
    """A mail without a processable attachment makes Postroom send one notice to the sender, with an empty return path and no attachment."""
    inbox = await inbox_address(relayed)
    original = message(inbox, body="where is my invoice?")
    await send(relayed, original)
    assert await wait_for(lambda: _status(relayed)) == "sent"
    ((mail_from, recipients, content),) = relay.received
    assert mail_from == "<>"
    assert recipients == [SENDER]
    notice = message_from_bytes(content, policy=policy.default)
    assert notice["Auto-Submitted"] == "auto-replied"
    assert notice["In-Reply-To"] == original["Message-ID"]
    assert not notice.is_multipart()
    assert inbox in notice.get_content()


async def test_filtered_attachments_count_as_no_document(
    relayed: RunningServer, relay: Relay
) -> None:
    """When every attachment is filtered by type, the sender is notified too."""
    await set_queue(relayed, settings={"accepted_mime_types": ["image/*"]})
    inbox = await inbox_address(relayed)
    await send(relayed, message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")]))
    assert await wait_for(lambda: _status(relayed)) == "sent"
    assert len(relay.received) == 1


async def test_notice_goes_to_the_configured_recipient(
    relayed: RunningServer, relay: Relay
) -> None:
    """settings.email_notifications.recipient receives the notice instead of the sender."""
    await set_queue(
        relayed,
        settings={"email_notifications": {"recipient": {"email": "ops@corp.test", "name": "Ops"}}},
    )
    await send(relayed, message(await inbox_address(relayed)))
    assert await wait_for(lambda: _status(relayed)) == "sent"
    assert relay.received[0][1] == ["ops@corp.test"]


async def test_disabled_notifications_are_not_sent(relayed: RunningServer, relay: Relay) -> None:
    """email_with_no_attachments false: nothing is sent and the email says so."""
    await set_queue(relayed, settings={"email_notifications": {"email_with_no_attachments": False}})
    await send(relayed, message(await inbox_address(relayed)))
    (email,) = await emails(relayed)
    assert email.notification_status == "not_sent: disabled"
    assert relay.received == []


async def test_auto_submitted_mail_is_not_answered(relayed: RunningServer, relay: Relay) -> None:
    """An auto-submitted message (an out-of-office reply, say) never gets a notice."""
    msg = message(await inbox_address(relayed), subject="Out of office")
    msg["Auto-Submitted"] = "auto-replied"
    await send(relayed, msg)
    (email,) = await emails(relayed)
    assert email.notification_status == "not_sent: auto-submitted"
    assert relay.received == []


async def test_mail_with_document_is_not_notified(relayed: RunningServer, relay: Relay) -> None:
    """A mail whose PDF became an annotation gets no notice."""
    inbox = await inbox_address(relayed)
    await send(relayed, message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")]))
    (email,) = await emails(relayed)
    assert email.notification_status is None
    assert relay.received == []


async def test_unreachable_relay_is_recorded_as_failed(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A relay that refuses connections leaves notification_status `failed: ...`, and the mail itself was accepted."""
    closed = await Relay().start()
    port = closed.port
    await closed.stop()
    server = await server_factory(
        POSTROOM_SMTP_RELAY_HOST="127.0.0.1", POSTROOM_SMTP_RELAY_PORT=str(port)
    )
    await send(server, message(await inbox_address(server)))
    status = await wait_for(lambda: _status(server))
    assert status.startswith("failed: ")
