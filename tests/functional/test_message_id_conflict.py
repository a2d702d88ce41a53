"""The same Message-ID from the same sender with other bytes is flagged: the new email is kept (it
may be a real message) and names the earlier one in `message_id_conflict`, and a warning is
logged; it is neither merged into the first nor stored as an unremarkable second email."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import Api, RunningServer
from tests.smtp_support import inbox_address, message, pdf_bytes, send


async def _emails(admin: Api) -> list[dict[str, object]]:
    _, listed = await admin.get("/emails", params={"ordering": "id"}, expect=200)
    return listed["results"]  # type: ignore[no-any-return]


async def test_same_message_id_other_bytes_same_sender_is_flagged(
    admin: Api, server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """First copy: not flagged. Same Message-ID and sender, other attachment: a second email whose
    `message_id_conflict` is the first's URL, a warning naming both; a byte-identical resend is
    still stored once."""
    inbox = await inbox_address(server)
    original = message(inbox, attachments=[("a.pdf", pdf_bytes("one"), "application/pdf")])
    tampered = message(inbox, attachments=[("a.pdf", pdf_bytes("two"), "application/pdf")])
    tampered.replace_header("Message-ID", str(original["Message-ID"]))
    await send(server, original)
    raw = tampered.as_bytes()
    with caplog.at_level(logging.WARNING, logger="postroom.smtp"):
        await send(server, raw, recipients=[inbox])
        await send(server, raw, recipients=[inbox])  # the same bytes again: deduplicated

    first, second = await _emails(admin)
    assert first["message_id"] == second["message_id"] == original["Message-ID"]
    assert first["message_id_conflict"] is None
    assert second["message_id_conflict"] == first["url"]
    assert len(second["documents"]) == 1  # type: ignore[arg-type]
    _, one = await admin.get(str(second["url"]), expect=200)
    assert one["message_id_conflict"] == first["url"]
    _, listed = await admin.get("/emails", params={"has_message_id_conflict": "true"})
    assert [e["id"] for e in listed["results"]] == [second["id"]]
    _, listed = await admin.get("/emails", params={"has_message_id_conflict": "false"})
    assert [e["id"] for e in listed["results"]] == [first["id"]]
    flagged = [r for r in caplog.records if "Message-ID" in r.getMessage()]
    assert len(flagged) == 1 and flagged[0].levelno == logging.WARNING


async def test_other_sender_or_same_bytes_is_not_flagged(admin: Api, server: RunningServer) -> None:
    """Another sender reusing a Message-ID is another conversation: not flagged."""
    inbox = await inbox_address(server)
    original = message(inbox, attachments=[("a.pdf", pdf_bytes("one"), "application/pdf")])
    other = message(
        inbox,
        sender="Someone Else <else@elsewhere.example>",
        attachments=[("b.pdf", pdf_bytes("two"), "application/pdf")],
    )
    other.replace_header("Message-ID", str(original["Message-ID"]))
    await send(server, original)
    await send(server, other, sender="else@elsewhere.example")
    stored = await _emails(admin)
    assert len(stored) == 2
    assert [e["message_id_conflict"] for e in stored] == [None, None]
