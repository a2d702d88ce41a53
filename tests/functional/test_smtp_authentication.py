"""Mail authentication over real SMTP sessions: SPF, DKIM and DMARC against the tests' local DNS
server, the verdict on the email (`authentication_results`), and the inbox's
`dmarc_check_action` (`accept` records and imports, `drop` refuses with 550 5.7.1 at the end of
DATA and stores nothing; a DNS failure is a temporary verdict: 451 4.7.0, never a 5xx)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
import sqlalchemy as sa

from postroom.db import tables as t
from tests.conftest import Api, RunningServer
from tests.dns_support import (
    black_hole,
    publish_dkim_key,
    shared_dns,
    signed,
    unique_domain,
)
from tests.smtp_support import emails, execute, inbox_address, message, pdf_bytes


async def _set_action(server: RunningServer, action: str, queue_id: int = 1) -> None:
    inbox_id = sa.select(t.queues.c.inbox_id).where(t.queues.c.id == queue_id).scalar_subquery()
    await execute(
        server,
        sa.update(t.inboxes).where(t.inboxes.c.id == inbox_id).values(dmarc_check_action=action),
    )


def _mail(inbox: str, domain: str, *, subject: str = "Invoice 7") -> EmailMessage:
    return message(
        inbox,
        sender=f"Billing <billing@{domain}>",
        subject=subject,
        attachments=[("invoice.pdf", pdf_bytes(), "application/pdf")],
    )


async def _send(server: RunningServer, raw: bytes, inbox: str, mail_from: str) -> tuple[int, str]:
    """One SMTP session; the reply to the end of DATA as (code, text)."""
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1",
        port=server.smtp_port,
        timeout=60,
        local_hostname="mta.sender.test",
    )
    await client.connect()
    try:
        await client.ehlo()
        await client.mail(mail_from)
        await client.rcpt(inbox)
        try:
            response = await client.data(raw)
        except aiosmtplib.SMTPResponseException as refused:
            return refused.code, refused.message
        return response.code, response.message
    finally:
        await client.quit()


def _stored_blobs(server: RunningServer) -> list[Any]:
    blobs = server.data_dir / "blobs"
    return [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []


async def test_dkim_signed_mail_passes_dmarc_and_the_verdict_is_on_the_email(
    server: RunningServer, admin: Api
) -> None:
    """A mail DKIM-signed by its From domain (DMARC p=reject) passes, even for an inbox that drops failures; the email object carries the Authentication-Results text."""
    dns = shared_dns()
    domain = unique_domain()
    key = publish_dkim_key(dns, domain)
    dns.txt(f"_dmarc.{domain}", "v=DMARC1; p=reject")
    await _set_action(server, "drop")
    inbox = await inbox_address(server)
    code, _text = await _send(server, signed(_mail(inbox, domain), key), inbox, f"b@{domain}")
    assert code == 250
    (email,) = await emails(server)
    _status, body = await admin.get(f"/emails/{email.id}", expect=200)
    results = body["authentication_results"]
    assert f"dkim=pass header.d={domain} header.s=s1" in results
    assert f"dmarc=pass (p=reject) header.from={domain}" in results
    assert "spf=none" in results


async def test_aligned_spf_pass_passes_dmarc(server: RunningServer) -> None:
    """The connecting address authorized by the SPF of the envelope domain (a subdomain of the From domain: relaxed alignment) passes DMARC."""
    dns = shared_dns()
    domain = unique_domain()
    dns.txt(f"mail.{domain}", "v=spf1 ip4:127.0.0.1 -all")
    dns.txt(f"_dmarc.{domain}", "v=DMARC1; p=reject")
    await _set_action(server, "drop")
    inbox = await inbox_address(server)
    mail = _mail(inbox, domain)
    code, _text = await _send(server, mail.as_bytes(), inbox, f"bounces@mail.{domain}")
    assert code == 250
    (email,) = await emails(server)
    assert "spf=pass" in email.authentication_results
    assert "dmarc=pass" in email.authentication_results


async def test_forged_from_is_refused_by_a_dropping_inbox_and_nothing_is_stored(
    server: RunningServer,
) -> None:
    """From a domain whose SPF and DMARC say reject, unsigned, to an inbox with dmarc_check_action drop: 550 5.7.1 at the end of DATA, no email, no blob."""
    dns = shared_dns()
    domain = unique_domain("bank")
    dns.txt(domain, "v=spf1 ip4:192.0.2.1 -all")
    dns.txt(f"_dmarc.{domain}", "v=DMARC1; p=reject")
    await _set_action(server, "drop")
    inbox = await inbox_address(server)
    code, text = await _send(server, _mail(inbox, domain).as_bytes(), inbox, f"ceo@{domain}")
    assert (code, text[:6]) == (550, "5.7.1 ")
    assert await emails(server) == []
    assert _stored_blobs(server) == []


async def test_forged_from_is_recorded_and_imported_by_an_accepting_inbox(
    server: RunningServer,
) -> None:
    """The same forged mail to an inbox with dmarc_check_action accept is imported, its failing verdict recorded."""
    dns = shared_dns()
    domain = unique_domain("bank")
    dns.txt(domain, "v=spf1 ip4:192.0.2.1 -all")
    dns.txt(f"_dmarc.{domain}", "v=DMARC1; p=reject")
    inbox = await inbox_address(server)
    code, _text = await _send(server, _mail(inbox, domain).as_bytes(), inbox, f"ceo@{domain}")
    assert code == 250
    (email,) = await emails(server)
    assert f"spf=fail smtp.mailfrom={domain}" in email.authentication_results
    assert f"dmarc=fail (p=reject) header.from={domain}" in email.authentication_results
    assert len(await _annotations(server)) == 1


async def test_tampered_signed_mail_fails_dkim_and_is_dropped(server: RunningServer) -> None:
    """A signature that no longer matches the body (altered in transit) fails DKIM, so DMARC fails."""
    dns = shared_dns()
    domain = unique_domain()
    key = publish_dkim_key(dns, domain)
    dns.txt(f"_dmarc.{domain}", "v=DMARC1; p=quarantine")
    inbox = await inbox_address(server)
    raw = signed(_mail(inbox, domain), key).replace(b"Please find", b"Please wire")
    await _set_action(server, "drop")
    code, _text = await _send(server, raw, inbox, f"b@{domain}")
    assert code == 550
    await _set_action(server, "accept")
    code, _text = await _send(server, raw, inbox, f"b@{domain}")
    assert code == 250
    (email,) = await emails(server)
    assert f"dkim=fail header.d={domain}" in email.authentication_results
    assert "dmarc=fail" in email.authentication_results


async def test_dns_failure_is_temporary_never_permanent(server: RunningServer) -> None:
    """SERVFAIL for the sender's domain: a dropping inbox answers 451 4.7.0 and keeps nothing; an accepting one imports and records temperror."""
    dns = shared_dns()
    domain = unique_domain("flaky")
    dns.fail(domain)
    inbox = await inbox_address(server)
    raw = _mail(inbox, domain).as_bytes()
    await _set_action(server, "drop")
    code, text = await _send(server, raw, inbox, f"b@{domain}")
    assert (code, text[:6]) == (451, "4.7.0 ")
    assert await emails(server) == []
    await _set_action(server, "accept")
    code, _text = await _send(server, raw, inbox, f"b@{domain}")
    assert code == 250
    (email,) = await emails(server)
    assert "dmarc=temperror" in email.authentication_results


@pytest.mark.parametrize("action, expected", [("drop", 451), ("accept", 250)])
async def test_unanswering_dns_is_bounded_and_temporary(
    server_factory: Any, action: str, expected: int
) -> None:
    """A DNS server that never answers: the checks give up after the configured timeouts with a temporary verdict."""
    sock, address = black_hole()
    try:
        server = await server_factory(
            POSTROOM_SMTP_DNS_SERVERS=address,
            POSTROOM_SMTP_DNS_TIMEOUT_S="0.2",
            POSTROOM_SMTP_AUTHENTICATION_TIMEOUT_S="1",
        )
        await _set_action(server, action)
        inbox = await inbox_address(server)
        domain = unique_domain()
        code, _text = await _send(server, _mail(inbox, domain).as_bytes(), inbox, f"b@{domain}")
        assert code == expected
        stored = await emails(server)
        if action == "accept":
            assert "temperror" in stored[0].authentication_results
        else:
            assert stored == []
    finally:
        sock.close()


async def _annotations(server: RunningServer) -> list[Any]:
    async with server.service.runtime.db.reading() as conn:  # type: ignore[union-attr]
        return list((await conn.execute(sa.select(t.annotations.c.id))).all())
