"""kill -9 during a stream of SMTP messages: after a restart every message that got 250 is there
with its document, and no annotation stays in `importing`. `postroom serve` runs as a real
subprocess; senders are real SMTP sessions."""

from __future__ import annotations

import asyncio
import contextlib
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, PG_URL, Api, reset_postgres
from tests.smtp_support import message, pdf_bytes, wait_for
from tests.subprocess_server import ServeProcess

pytestmark = pytest.mark.slow

SENDERS = 4


async def _sender(port: int, inbox: str, acked: list[str], stop: asyncio.Event) -> None:
    """Send messages one after another until the server dies; remember each acknowledged one."""
    pdf = pdf_bytes()
    while not stop.is_set():
        msg = message(inbox, attachments=[("scan.pdf", pdf, "application/pdf")])
        msg.replace_header("Message-ID", make_msgid(domain="crash.test"))
        try:
            await aiosmtplib.send(msg, hostname="127.0.0.1", port=port, timeout=10)
        except (aiosmtplib.SMTPException, OSError):
            return  # killed mid-session: this message was never acknowledged
        acked.append(str(msg["Message-ID"]))


async def _all_emails(api: Api) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        status, body = await api.get("/emails", params={"page": str(page), "page_size": "100"})
        assert status == 200, body
        found += body["results"]
        if not body["pagination"]["next"]:
            return found
        page += 1


async def test_kill_9_loses_no_acknowledged_message(tmp_path: Path) -> None:
    """Messages acknowledged with 250 before a kill -9 are all stored with their document after restart, and every annotation leaves importing."""
    if PG_URL:
        await reset_postgres(PG_URL)
    proc = ServeProcess(tmp_path / "data")
    proc.start()
    acked: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            api = await Api(http, proc.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
            _, inboxes = await api.get("/inboxes")
            inbox = inboxes["results"][0]["email"]
            stop = asyncio.Event()
            senders = [
                asyncio.create_task(_sender(proc.smtp_port, inbox, acked, stop))
                for _ in range(SENDERS)
            ]

            async def enough() -> bool:
                return len(acked) >= 15

            await wait_for(enough, 60)
            proc.kill()  # SIGKILL while the senders are mid-stream
            stop.set()
            await asyncio.gather(*senders)
        assert len(acked) >= 15
        proc.start()
        async with aiohttp.ClientSession() as http:
            api = await Api(http, proc.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
            stored = {e["message_id"]: e for e in await _all_emails(api)}
            missing = [m for m in acked if m not in stored]
            assert missing == []
            for message_id in acked:
                assert len(stored[message_id]["documents"]) == 1
                assert len(stored[message_id]["annotations"]) == 1

            async def none_importing() -> bool:
                _, body = await api.get("/annotations", params={"status": "importing"})
                return int(body["pagination"]["total"]) == 0

            await wait_for(none_importing, 90)
    finally:
        with contextlib.suppress(Exception):
            proc.kill()
