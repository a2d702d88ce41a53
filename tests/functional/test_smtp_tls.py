"""STARTTLS with a configured certificate (a self-signed one made by openssl for the test)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import aiosmtplib
import pytest

from tests.smtp_support import SENDER, emails, inbox_address, message, pdf_bytes

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[str, str]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


async def plain_session(port: int) -> aiosmtplib.SMTP:
    """A connected client that has said EHLO and not (yet) started TLS."""
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=port, timeout=30, start_tls=False, validate_certs=False
    )
    await client.connect()
    await client.ehlo()
    return client


async def test_starttls_is_advertised_and_carries_mail(server_factory, certificate) -> None:  # type: ignore[no-untyped-def]
    """With smtp.tls_cert/tls_key set, EHLO offers STARTTLS and a message sent over TLS is stored."""
    cert, key = certificate
    server = await server_factory(POSTROOM_SMTP_TLS_CERT=cert, POSTROOM_SMTP_TLS_KEY=key)
    inbox = await inbox_address(server)
    client = await plain_session(server.smtp_port)
    assert "starttls" in client.esmtp_extensions
    await client.starttls()
    assert "starttls" not in client.esmtp_extensions  # not offered twice
    msg = message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")])
    await client.send_message(msg, sender=SENDER)
    await client.quit()
    assert len(await emails(server)) == 1


async def test_require_tls_refuses_mail_before_starttls(server_factory, certificate) -> None:  # type: ignore[no-untyped-def]
    """With smtp.require_tls, MAIL before STARTTLS answers 530 5.7.0."""
    cert, key = certificate
    server = await server_factory(
        POSTROOM_SMTP_TLS_CERT=cert, POSTROOM_SMTP_TLS_KEY=key, POSTROOM_SMTP_REQUIRE_TLS="true"
    )
    client = await plain_session(server.smtp_port)
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        await client.mail(SENDER)
    assert (refused.value.code, refused.value.message[:6]) == (530, "5.7.0 ")
    await client.quit()
