"""RCPT probing: unknown recipients are slowed down, and past `smtp.max_unknown_recipients` per
connection and per client address the client gets 421 4.7.0 and is disconnected. Other client
addresses (127.0.0.2 on the loopback) are unaffected; valid recipients still work for them.
Python's smtplib over real sockets, in a thread (the server shares the test's event loop)."""

from __future__ import annotations

import asyncio
import smtplib
from typing import Any

import pytest

from tests.conftest import RunningServer
from tests.smtp_support import SENDER, emails, inbox_address, message, pdf_bytes

LIMIT = 10


@pytest.fixture
async def guarded(server_factory: Any) -> RunningServer:
    return await server_factory(  # type: ignore[no-any-return]
        POSTROOM_SMTP_UNKNOWN_RECIPIENT_DELAY_S="0.001",
        POSTROOM_SMTP_UNKNOWN_RECIPIENT_MAX_DELAY_S="0.01",
    )


def _probe(port: int, source: str, count: int) -> list[int]:
    """RCPT codes for `count` unknown recipients in one session from `source`; a dropped
    connection ends the list with -1."""
    codes: list[int] = []
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as client:
        client.ehlo("prober.test")
        client.mail(SENDER)
        for n in range(count):
            try:
                code, _text = client.rcpt(f"nobody-{n}@localhost")
            except smtplib.SMTPServerDisconnected:
                codes.append(-1)
                break
            codes.append(code)
            if code == 421:
                try:
                    client.noop()
                except smtplib.SMTPServerDisconnected:
                    codes.append(-1)
                break
    return codes


def _deliver(port: int, source: str, inbox: str) -> dict[str, Any]:
    msg = message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as client:
        return client.send_message(msg, from_addr=SENDER)


async def test_unknown_recipients_end_in_421_and_a_closed_connection(
    guarded: RunningServer,
) -> None:
    """Ten unknown recipients get 550; the next RCPT gets 421 and the server hangs up."""
    port = guarded.smtp_port
    assert port is not None
    codes = await asyncio.to_thread(_probe, port, "127.0.0.1", 50)
    assert codes == [550] * LIMIT + [421, -1]


async def test_the_limit_counts_per_address_across_connections(
    guarded: RunningServer,
) -> None:
    """Probing spread over connections is cut off too, valid recipients included; other client addresses still deliver to a valid inbox."""
    port = guarded.smtp_port
    assert port is not None
    inbox = await inbox_address(guarded)
    first = await asyncio.to_thread(_probe, port, "127.0.0.1", 6)
    assert first == [550] * 6
    second = await asyncio.to_thread(_probe, port, "127.0.0.1", 6)
    assert second == [550] * 4 + [421, -1]
    # The address is blocked for any recipient now, a valid one included (no more answers to learn from).
    with pytest.raises((smtplib.SMTPRecipientsRefused, smtplib.SMTPServerDisconnected)):
        await asyncio.to_thread(_deliver, port, "127.0.0.1", inbox)
    # A fresh client from another address is unaffected.
    assert await asyncio.to_thread(_deliver, port, "127.0.0.2", inbox) == {}
    # One below the limit (a typo or two) still delivers to valid inboxes.
    assert await asyncio.to_thread(_probe, port, "127.0.0.3", 3) == [550] * 3
    assert await asyncio.to_thread(_deliver, port, "127.0.0.3", inbox) == {}
    assert len(await emails(guarded)) == 2
