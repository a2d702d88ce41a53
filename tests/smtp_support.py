"""Helpers of the SMTP tests: real MIME messages, real SMTP sessions, and looks into the records.

Messages are built with the `email` package; sessions go over a socket to the running test
server (aiosmtplib, or smtplib in a thread: the server shares the test's event loop). Records are
read through the service's own database handle.
"""

from __future__ import annotations

import asyncio
import io
import os
import smtplib
import zipfile
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP as StockSMTP
from PIL import Image
from pypdf import PdfWriter

from postroom.db import tables as t
from postroom.domain.inboxes import create_inbox
from postroom.domain.queues import insert_queue
from tests.conftest import RunningServer

SENDER = "supplier@example.com"


def pdf_bytes(tag: str | None = None) -> bytes:
    """A valid one-page PDF; `tag` (random by default) makes its bytes unique."""
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": tag or os.urandom(8).hex()})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def png_bytes(width: int, height: int) -> bytes:
    image = Image.new("RGB", (width, height), tuple(os.urandom(3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def message(
    to: str,
    *,
    subject: str = "Invoice 42",
    sender: str = f"Supplier Ltd <{SENDER}>",
    body: str = "Please find the invoice attached.",
    attachments: list[tuple[str, bytes, str]] = (),  # type: ignore[assignment]
) -> EmailMessage:
    """A multipart/mixed message with a text body and `(filename, bytes, mime type)` files."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg["Date"] = "Sat, 28 Nov 2026 10:00:00 +0000"
    msg.set_content(body)
    for name, data, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


async def send(
    server: RunningServer,
    msg: EmailMessage | bytes,
    *,
    recipients: list[str] | None = None,
    sender: str = SENDER,
) -> Any:
    """One SMTP session (aiosmtplib) delivering `msg`; returns aiosmtplib's result."""
    if recipients is None and isinstance(msg, EmailMessage):
        recipients = [str(msg["To"])]
    return await aiosmtplib.send(
        msg,
        sender=sender,
        recipients=recipients,
        hostname="127.0.0.1",
        port=server.smtp_port,
        timeout=60,
    )


def send_with_smtplib(port: int, msg: EmailMessage, sender: str = SENDER) -> dict[str, Any]:
    """Python's smtplib, as in the issue's acceptance check (run it in a thread)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        return client.send_message(msg, from_addr=sender)


async def inbox_address(server: RunningServer, queue_id: int = 1) -> str:
    async with server.service.runtime.db.reading() as conn:  # type: ignore[union-attr]
        return str(
            await conn.scalar(
                sa.select(t.inboxes.c.email)
                .select_from(t.queues.join(t.inboxes, t.queues.c.inbox_id == t.inboxes.c.id))
                .where(t.queues.c.id == queue_id)
            )
        )


async def add_queue_with_inbox(server: RunningServer, name: str) -> tuple[int, str]:
    """A second queue of organization 1 with its own inbox; returns (queue id, inbox address)."""
    services = server.service.runtime
    assert services is not None
    async with services.db.transaction() as conn:
        prefix = name.lower().replace(" ", "-")
        inbox_id = await create_inbox(
            conn, 1, f"{name} inbox", prefix, services.settings.smtp.domain
        )
        queue_id = await insert_queue(
            conn, 1, name=name, schema_id=1, workspace_id=1, inbox_id=inbox_id
        )
    return queue_id, await inbox_address(server, queue_id)


async def execute(server: RunningServer, statement: Any) -> None:
    services = server.service.runtime
    assert services is not None
    async with services.db.transaction() as conn:
        await conn.execute(statement)


async def set_queue(server: RunningServer, queue_id: int = 1, **values: Any) -> None:
    await execute(server, sa.update(t.queues).where(t.queues.c.id == queue_id).values(**values))


async def set_inbox_filters(
    server: RunningServer, filters: dict[str, Any], queue_id: int = 1
) -> None:
    inbox_id = sa.select(t.queues.c.inbox_id).where(t.queues.c.id == queue_id).scalar_subquery()
    await execute(
        server, sa.update(t.inboxes).where(t.inboxes.c.id == inbox_id).values(filters=filters)
    )


async def rows(server: RunningServer, table: sa.Table, *where: Any) -> list[Any]:
    async with server.service.runtime.db.reading() as conn:  # type: ignore[union-attr]
        return list((await conn.execute(sa.select(table).where(*where).order_by(table.c.id))).all())


async def emails(server: RunningServer) -> list[Any]:
    return await rows(server, t.emails)


async def documents_of(server: RunningServer, email_id: int) -> list[Any]:
    return await rows(server, t.documents, t.documents.c.email_id == email_id)


async def wait_for(check: Callable[[], Awaitable[Any]], seconds: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy (a bound, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Relay:
    """A real SMTP server standing in for the outbound relay: keeps every envelope it gets."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.port = 0
        self._server: asyncio.base_events.Server | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    async def start(self) -> Relay:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: StockSMTP(self, hostname="relay.test", loop=loop), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
