"""A message whose MIME structure is beyond the limits (a thousand nested multiparts) is refused
for good: SMTP `554 5.6.0` (a sender does not retry it), one log line and no traceback, nothing
recorded; the same message through `POST /emails/import` is a 400."""

from __future__ import annotations

import logging

import aiohttp
import aiosmtplib
import pytest

from postroom.db import tables as t
from tests.conftest import Api, RunningServer
from tests.smtp_support import emails, inbox_address, rows, send


def nested(to: str, levels: int, padding: int = 0) -> bytes:
    """A message of `levels` multiparts, each inside the previous one (optionally padded)."""
    head = (
        f"From: Someone <someone@example.com>\r\nTo: {to}\r\nSubject: deep\r\n"
        "Message-ID: <deep@example.com>\r\nMIME-Version: 1.0\r\n"
    ).encode()
    filler = b"x" * padding
    body = b"Content-Type: text/plain\r\n\r\n" + filler + b"hello\r\n"
    for level in range(levels):
        boundary = b"b%d" % level
        body = (
            b'Content-Type: multipart/mixed; boundary="'
            + boundary
            + b'"\r\n\r\n--'
            + boundary
            + b"\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    return head + body


@pytest.mark.parametrize("padding", [0, 2 * 1024 * 1024], ids=["parsed", "scanned"])
async def test_deep_nesting_is_554_once_without_traceback(
    server: RunningServer, caplog: pytest.LogCaptureFixture, padding: int
) -> None:
    """1,000 nested multiparts → 554 5.6.0 on both parsers (small messages and scanned large
    ones); one warning, no traceback; no email, document or annotation."""
    inbox = await inbox_address(server)
    caplog.set_level(logging.INFO, logger="postroom")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await send(server, nested(inbox, 1000, padding), recipients=[inbox])
    assert refused.value.code == 554
    assert refused.value.message.startswith("5.6.0 "), refused.value.message
    assert await emails(server) == []
    assert await rows(server, t.documents) == []
    assert await rows(server, t.annotations) == []
    refusals = [r for r in caplog.records if r.name == "postroom.smtp" and r.levelno >= 30]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert refusals[0].exc_info is None
    assert all(r.exc_info is None for r in caplog.records)


async def test_nesting_within_the_limit_is_accepted(server: RunningServer) -> None:
    """Twenty nested multiparts are an ordinary (if odd) message: 250."""
    inbox = await inbox_address(server)
    await send(server, nested(inbox, 20), recipients=[inbox])
    assert len(await emails(server)) == 1


async def test_import_of_a_deep_message_is_400(server: RunningServer, admin: Api) -> None:
    """POST /emails/import with the same message: 400 naming the limit, nothing recorded."""
    inbox = await inbox_address(server)
    form = aiohttp.FormData()
    form.add_field(
        "raw_message", nested(inbox, 1000), filename="e.eml", content_type="message/rfc822"
    )
    form.add_field("recipient", inbox)
    status, body = await admin.post("/emails/import", data=form)
    assert status == 400 and "nested" in body["detail"], body
    assert await emails(server) == []
