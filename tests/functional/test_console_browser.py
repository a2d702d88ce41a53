"""The operator console in a real browser (Playwright driving Chromium): log in, watch a real
mail and a real upload appear, retry an import that failed on purpose, log out."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser_support import browser_page, requires_chromium
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.console_support import repair_blob, wait_status
from tests.pipeline_support import make_pdf, submit
from tests.smtp_support import SENDER, inbox_address, message, send_with_smtplib

pytestmark = requires_chromium

BROKEN_PDF = b"%PDF-1.7\n" + b"\x00garbage" * 200


async def _log_in(page: Any, base: str) -> None:
    await page.goto(base + "/")
    assert page.url.endswith("/login")
    await page.fill('input[name="username"]', ADMIN_USER)
    await page.fill('input[name="password"]', ADMIN_PASSWORD)
    await page.click('button:has-text("Log in")')
    await page.wait_for_url(base + "/")


async def _reload_until(page: Any, text: str, within: float = 30.0) -> None:
    """Reload until the page shows `text` (the pipeline works in the background)."""
    async with asyncio.timeout(within):
        while True:
            if text in await page.inner_text("main"):
                return
            await asyncio.sleep(0.2)
            await page.reload()


async def test_operator_sees_mail_and_uploads_and_retries_a_failed_import(
    server: RunningServer, admin: Api
) -> None:
    assert server.smtp_port is not None
    base = server.base
    async with browser_page() as page:
        await _log_in(page, base)
        main = await page.inner_text("main")
        assert "Invoices" in main and await inbox_address(server) in main
        assert await page.locator("svg.chart rect").count() == 24

        # A real mail over SMTP appears in the mail log, linked to its document.
        to = await inbox_address(server)
        msg = message(to, attachments=[("mailed.pdf", make_pdf(), "application/pdf")])
        await asyncio.to_thread(send_with_smtplib, server.smtp_port, msg)
        await page.click('nav >> text="Mail log"')
        await _reload_until(page, "mailed.pdf")
        row = page.locator("tr.entry", has_text="mailed.pdf")
        assert SENDER in await row.inner_text() and "250" in await row.inner_text()
        await row.locator('a:has-text("mailed.pdf")').click()
        await page.wait_for_url("**/documents/*")
        assert "application/pdf" in await page.inner_text("main")

        # A real upload over HTTP: one good file, one that fails its import on purpose.
        [good_id, broken_id] = await submit(
            admin, [("uploaded.pdf", make_pdf()), ("broken.pdf", BROKEN_PDF)]
        )
        await wait_status(server, broken_id, "failed_import")
        await page.click('nav >> text="Uploads"')
        await _reload_until(page, "failed_import")
        upload = await page.locator("tr.upload").first.inner_text()
        assert "uploaded.pdf" in upload and "broken.pdf" in upload and ADMIN_USER in upload

        # The failed import is listed with its reason; once its file is repaired, Retry works.
        await page.click('nav >> text="Failed"')
        failure = page.locator(f'tr.failure[data-annotation="{broken_id}"]')
        assert "broken.pdf" in await failure.inner_text()
        await repair_blob(server, broken_id, make_pdf(3))
        await failure.locator('button:has-text("Retry")').click()
        await page.wait_for_url("**/failed?retried=*")
        assert f"Re-queued: {broken_id}" in await page.inner_text("main")
        await wait_status(server, broken_id, "to_review")
        await _reload_until(page, "Nothing has failed")
        assert good_id != broken_id

        # Log out: back to the login page, and the pages need a login again.
        await page.click('button:has-text("Log out")')
        await page.wait_for_url("**/login")
        await page.goto(base + "/failed")
        assert "/login?next=" in page.url


async def test_bulk_retry_selects_rows_with_the_page_script(
    server: RunningServer, admin: Api
) -> None:
    ids = await submit(admin, [(f"b{n}.pdf", BROKEN_PDF + bytes([n])) for n in range(3)])
    for annotation_id in ids:
        await wait_status(server, annotation_id, "failed_import")
        await repair_blob(server, annotation_id, make_pdf())
    async with browser_page() as page:
        await _log_in(page, server.base)
        await page.goto(server.base + "/failed")
        bulk = page.locator("button.retry-selected")
        assert await bulk.is_disabled()  # the script enables it once rows are chosen
        await page.check("input.select-all")
        assert await bulk.inner_text() == "Retry selected (3)"
        await bulk.click()
        await page.wait_for_url("**/failed?retried=*")
    for annotation_id in ids:
        await wait_status(server, annotation_id, "to_review")
