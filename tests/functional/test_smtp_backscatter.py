"""Backscatter: the "no processable attachment" notice is sent only to authenticated authors,
never to bounce or robot senders, at most `smtp.notices_per_sender_per_hour` times per address,
and quotes nothing of the mail but the first 100 characters of its subject. Real SMTP sessions;
the relay is a real SMTP server run by the test; DNS is the tests' local server (example.com
authorizes the loopback by SPF, so the suite's usual sender is authenticated)."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from tests.conftest import RunningServer
from tests.dns_support import shared_dns, unique_domain
from tests.smtp_support import Relay, emails, inbox_address, message, send, wait_for


async def _statuses(server: RunningServer, count: int) -> list[str]:
    """The notification statuses of the first `count` emails once none is pending any more."""

    async def settled() -> list[str] | None:
        found = [e.notification_status for e in await emails(server)]
        return found if len(found) == count and "pending" not in found else None

    return await wait_for(settled)  # type: ignore[no-any-return]


async def test_forged_author_gets_no_notice(relayed: RunningServer, relay: Relay) -> None:
    """A mail without attachment whose From (and envelope) is a domain that does not authorize the client gets no notice: no backscatter to the forged address."""
    dns = shared_dns()
    victim = unique_domain("victim")
    dns.txt(victim, "v=spf1 ip4:192.0.2.0/24 -all")
    inbox = await inbox_address(relayed)
    forged = f"alice@{victim}"
    await send(relayed, message(inbox, sender=f"Alice <{forged}>"), sender=forged)
    unauthenticated = f"bob@{unique_domain('nothing-published')}"
    await send(relayed, message(inbox, sender=unauthenticated), sender=unauthenticated)
    assert await _statuses(relayed, 2) == ["not_sent: sender not authenticated"] * 2
    assert relay.received == []


@pytest.mark.parametrize(
    "author",
    ["MAILER-DAEMON@example.com", "postmaster@example.com", "bounces+x=y@example.com"],
)
async def test_bounce_senders_get_no_notice(
    relayed: RunningServer, relay: Relay, author: str
) -> None:
    """Bounce, MAILER-DAEMON and postmaster senders are never answered, even when authenticated."""
    inbox = await inbox_address(relayed)
    await send(relayed, message(inbox, sender=author), sender=author)
    assert await _statuses(relayed, 1) == ["not_sent: bounce sender"]
    assert relay.received == []


async def test_notices_per_sender_are_limited_per_hour(
    relayed: RunningServer, relay: Relay
) -> None:
    """Seven mails without attachment from one authenticated sender: five notices, then `not_sent: rate limited`."""
    inbox = await inbox_address(relayed)
    for n in range(7):
        await send(relayed, message(inbox, subject=f"question {n}"))
    statuses = await _statuses(relayed, 7)
    assert statuses.count("sent") == 5
    assert statuses[5:] == ["not_sent: rate limited"] * 2
    assert len(relay.received) == 5


async def test_notice_quotes_only_the_first_100_subject_characters(
    relayed: RunningServer, relay: Relay
) -> None:
    """The notice carries the subject's first 100 characters and nothing of the sender's display name or body."""
    inbox = await inbox_address(relayed)
    subject = "A" * 100 + " visit cheap-pills.example now"
    author = "Buy Cheap Pills Today <supplier@example.com>"
    await send(relayed, message(inbox, subject=subject, sender=author, body="SPAM BODY TEXT"))
    assert await _statuses(relayed, 1) == ["sent"]
    ((_mail_from, recipients, content),) = relay.received
    assert recipients == ["supplier@example.com"]
    notice = message_from_bytes(content, policy=policy.default)
    assert "A" * 100 in notice["Subject"]
    assert "cheap-pills" not in content.decode()
    assert "Pills" not in str(notice["To"])
    assert "SPAM BODY" not in content.decode()
