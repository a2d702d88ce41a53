"""Screenshots of every console page, for the README: `python scripts/screenshots.py [out_dir]`.

Starts a throw-away Postroom (SQLite in a temporary directory, free ports), feeds it real traffic
(mail over SMTP, one of them refused; uploads over HTTP, one failing its import; a hook), then
drives Debian's Chromium with Playwright and writes one PNG per page (docs/screens/ by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import sys
import tempfile
from email.message import EmailMessage
from pathlib import Path

import aiohttp

from postroom.app import Service
from postroom.config import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's tests package
from tests.browser_support import browser_page
from tests.pipeline_support import make_pdf

USER, PASSWORD = "admin", "screenshots-admin-password"


def send_mail(port: int, to: str, sender: str, files: list[tuple[str, bytes, str]]) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, "Invoices"
    msg.set_content("Please find the invoices attached.")
    for name, data, mime in files:
        main, sub = mime.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    # The refused one is part of the picture too.
    refused = contextlib.suppress(smtplib.SMTPRecipientsRefused)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client, refused:
        client.send_message(msg)


async def feed(base: str, smtp_port: int) -> None:
    api = base + "/api/v1"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            api + "/auth/login", json={"username": USER, "password": PASSWORD}
        ) as response:
            key = (await response.json())["key"]
        auth = {"Authorization": f"Bearer {key}"}
        async with http.get(api + "/inboxes/1", headers=auth) as response:
            inbox = (await response.json())["email"]
        mails = [
            (
                inbox,
                "billing@supplier.example",
                [("INV-2026-0042.pdf", make_pdf(2), "application/pdf")],
            ),
            (
                inbox,
                "ap@acme.example",
                [
                    ("scan.pdf", make_pdf(), "application/pdf"),
                    ("logo.exe", b"MZ" * 40, "application/octet-stream"),
                ],
            ),
            ("sales@unknown.example", "spam@bulk.example", []),
        ]
        for to, sender, files in mails:
            await asyncio.to_thread(send_mail, smtp_port, to, sender, files)
        for upload in (
            [("receipt-march.pdf", make_pdf(1)), ("receipt-april.pdf", make_pdf(3))],
            [("corrupt.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 200)],
        ):
            form = aiohttp.FormData()
            for name, data in upload:
                form.add_field("content", data, filename=name)
            async with http.post(api + "/uploads?queue=1", data=form, headers=auth) as response:
                assert response.status == 202, await response.text()
        hook = {
            "name": "ERP export",
            "type": "webhook",
            "events": ["annotation_status.changed"],
            "config": {"url": "https://erp.example/postroom"},
            "queues": [api + "/queues/1"],
        }
        async with http.post(api + "/hooks", json=hook, headers=auth) as response:
            assert response.status == 201, await response.text()
    await asyncio.sleep(2)  # let the pipeline settle the imports


async def shoot(base: str, out: Path) -> None:
    async with browser_page((1280, 760)) as page:
        await page.goto(base + "/login")
        await page.screenshot(path=str(out / "login.png"))
        await page.fill('input[name="username"]', USER)
        await page.fill('input[name="password"]', PASSWORD)
        await page.click('button:has-text("Log in")')
        await page.wait_for_url(base + "/")
        for name, path in (
            ("overview", "/"),
            ("mail-log", "/mail"),
            ("uploads", "/uploads"),
            ("failed", "/failed"),
            ("document", "/documents/1"),
            ("hooks", "/hooks"),
        ):
            await page.goto(base + path)
            await page.screenshot(path=str(out / f"{name}.png"), full_page=True)


async def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = load_settings(
            None,
            {
                "POSTROOM_STORAGE_DATA_DIR": data_dir,
                "POSTROOM_HTTP_PORT": "0",
                "POSTROOM_SMTP_PORT": "0",
                "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
                "POSTROOM_LOG_LEVEL": "WARNING",
            },
        )
        service = Service(settings)
        running = await service.start()
        try:
            assert running.smtp_port is not None
            base = service.settings.base_url
            await feed(base, running.smtp_port)
            await shoot(base, out)
        finally:
            await service.stop()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screens")
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target))
