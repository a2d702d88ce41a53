"""The operator console over real HTTP: `GET /` for API clients and browsers, login with the
API's users, the session cookie's flags, CSRF on every form, roles, and each page showing what
really happened (real SMTP, real uploads, a real failed import retried)."""

from __future__ import annotations

import asyncio
import re

import aiohttp

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.console_support import (
    console,
    csrf_of,
    mail_log_rows,
    repair_blob,
    wait_status,
)
from tests.pipeline_support import job_rows, make_pdf, submit, upload_task
from tests.smtp_support import inbox_address, message, send_with_smtplib

BROKEN_PDF = b"%PDF-1.7\n" + b"\x00garbage" * 200


async def test_root_answers_api_clients_with_a_json_index(
    server: RunningServer, http: aiohttp.ClientSession
) -> None:
    """`GET /` with Accept JSON (or none) is a small index whose links work, not a 404."""
    for accept in ("application/json", "*/*"):
        async with http.get(server.base + "/", headers={"Accept": accept}) as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            assert "Accept" in response.headers["Vary"]
            index = await response.json()
    assert index["openapi"] == server.base + "/api/v1/openapi.json"
    assert index["docs"] == server.base + "/api/docs"
    for link in (index["openapi"], index["docs"], index["health"]):
        async with http.get(link) as response:
            assert response.status == 200, link


async def test_browser_gets_the_login_page_and_a_session_with_safe_cookie_flags(
    server: RunningServer,
) -> None:
    async with console(server) as browser:
        status, _page, response = await browser.get("/")
        assert status == 303 and response.headers["Location"] == "/login"
        status, page, response = await browser.get("/login")
        assert status == 200 and response.content_type == "text/html"
        assert 'name="password"' in page and csrf_of(page)
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        login = await browser.login(ADMIN_USER, ADMIN_PASSWORD)
        cookie = login.headers.getall("Set-Cookie")
        session = next(c for c in cookie if c.startswith("postroom_session="))
        assert "HttpOnly" in session and "SameSite=Strict" in session
        assert "Secure" not in session  # plain-http base URL
        status, page, _ = await browser.get("/")
        assert status == 200
        assert "Invoices" in page and await inbox_address(server) in page
        assert "<svg" in page and "Documents per hour" in page


async def test_secure_cookie_when_the_public_base_url_is_https(server_factory: object) -> None:
    server = await server_factory(  # type: ignore[operator]
        POSTROOM_HTTP_PUBLIC_BASE_URL="https://postroom.example"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"http://127.0.0.1:{server.http_port}/login", headers={"Accept": "text/html"}
        ) as response,
    ):
        cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("postroom_login=") and "Secure" in cookie and "HttpOnly" in cookie


async def test_wrong_password_and_missing_csrf_are_refused(server: RunningServer) -> None:
    async with console(server) as browser:
        token = await browser.csrf("/login")
        form = {"username": ADMIN_USER, "password": ADMIN_PASSWORD}
        status, page, _ = await browser.post("/login", form)
        assert status == 403 and "CSRF" in page
        status, _, _ = await browser.post("/login", {**form, "csrf_token": "forged"})
        assert status == 403
        status, page, _ = await browser.post(
            "/login", {**form, "password": "wrong", "csrf_token": token}
        )
        assert status == 401 and "Invalid username or password" in page
        assert browser.session_key() is None


async def test_every_form_needs_its_csrf_token(server: RunningServer, admin: Api) -> None:
    """Logged in, a POST without the token (or with another session's) is 403 and does nothing."""
    [annotation_id] = await submit(admin, [("broken.pdf", BROKEN_PDF)])
    await wait_status(server, annotation_id, "failed_import")
    async with console(server) as browser, console(server) as other:
        await browser.login(ADMIN_USER, ADMIN_PASSWORD)
        await other.login(ADMIN_USER, ADMIN_PASSWORD)
        foreign = await other.csrf("/failed")
        for data in (
            {"annotation": str(annotation_id)},
            {"annotation": str(annotation_id), "csrf_token": foreign},
        ):
            status, _, _ = await browser.post("/failed/retry", data)
            assert status == 403
        status, _, _ = await browser.post("/logout", {})
        assert status == 403
        status, _, _ = await browser.get("/failed")
        assert status == 200  # still logged in
    assert (await admin.get(f"/annotations/{annotation_id}"))[1]["status"] == "failed_import"


async def test_viewer_and_annotator_see_but_cannot_retry(server: RunningServer, admin: Api) -> None:
    [annotation_id] = await submit(admin, [("broken.pdf", BROKEN_PDF)])
    await wait_status(server, annotation_id, "failed_import")
    for role in ("viewer", "annotator"):
        await admin.create_user(f"console-{role}", role, queues=[1])
        async with console(server) as browser:
            await browser.login(f"console-{role}", f"console-{role}-password")
            status, page, _ = await browser.get("/failed")
            assert status == 200 and "broken.pdf" in page
            assert "needs the admin or manager role" in page
            token = csrf_of(page)
            status, _, _ = await browser.post(
                "/failed/retry", {"annotation": str(annotation_id), "csrf_token": token}
            )
            assert status == 403, role
            status, page, _ = await browser.get("/hooks")
            assert status == 200 and "only admins and managers" in page
    assert (await admin.get(f"/annotations/{annotation_id}"))[1]["status"] == "failed_import"


async def test_mail_log_shows_accepted_and_refused_transactions(
    server: RunningServer, admin: Api
) -> None:
    """A real SMTP delivery and a refused recipient both land in the mail log, with their reply."""
    assert server.smtp_port is not None
    to = await inbox_address(server)
    msg = message(to, attachments=[("invoice.pdf", make_pdf(), "application/pdf")])
    await asyncio.to_thread(send_with_smtplib, server.smtp_port, msg)
    stranger = message("nobody@unknown.example", subject="lost")
    refused = await asyncio.to_thread(_send_refused, server.smtp_port, stranger)
    assert refused.startswith("550")
    async with asyncio.timeout(10):
        while True:
            if len(await mail_log_rows(server)) >= 2:
                break
            await asyncio.sleep(0.05)
    accepted, rejected = await mail_log_rows(server)
    assert accepted.reply_code == 250 and accepted.email_ids and accepted.size > 0
    assert accepted.files == [{"name": "invoice.pdf", "kept": True, "status": None}]
    assert rejected.reply_code == 550 and rejected.email_ids == []
    async with console(server) as browser:
        await browser.login(ADMIN_USER, ADMIN_PASSWORD)
        status, page, _ = await browser.get("/mail")
        assert status == 200
        assert "invoice.pdf" in page and "nobody@unknown.example" in page
        assert re.search(r"<b>250</b>", page) and re.search(r"<b>550</b>", page)
        assert re.search(r'href="/documents/\d+"', page)
        status, page, _ = await browser.get("/mail?outcome=refused")
        assert "nobody@unknown.example" in page and "invoice.pdf" not in page
        status, page, _ = await browser.get("/mail?page_size=1")
        assert 'rel="next"' in page and "Page 1 of 2" in page


def _send_refused(port: int, msg: object) -> str:
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        try:
            client.send_message(msg, from_addr="someone@example.com")  # type: ignore[arg-type]
        except smtplib.SMTPRecipientsRefused as refused:
            code, text = next(iter(refused.recipients.values()))
            return f"{code} {text.decode()}"
    return "accepted"


async def test_uploads_page_shows_who_what_and_the_outcome(
    server: RunningServer, admin: Api
) -> None:
    task = await upload_task(admin, [("good.pdf", make_pdf()), ("broken.pdf", BROKEN_PDF)])
    assert task
    async with console(server) as browser:
        await browser.login(ADMIN_USER, ADMIN_PASSWORD)
        async with asyncio.timeout(30):
            while True:
                status, page, _ = await browser.get("/uploads")
                if "failed_import" in page and "to_review" in page:
                    break
                await asyncio.sleep(0.1)
        assert status == 200 and "good.pdf" in page and "broken.pdf" in page
        assert ADMIN_USER in page
        doc = re.search(r'href="/documents/(\d+)">good.pdf', page)
        assert doc is not None
        _, filtered, _ = await browser.get("/uploads?user=nobody")
        assert "good.pdf" not in filtered
        status, page, _ = await browser.get(f"/documents/{doc.group(1)}")
        assert status == 200 and "application/pdf" in page and "Download" in page
        async with browser.session.get(
            f"{server.base}/documents/{doc.group(1)}/content"
        ) as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"].startswith("attachment")
            assert (await response.read()).startswith(b"%PDF")


async def test_retry_from_the_failed_page_requeues_the_import(
    server: RunningServer, admin: Api
) -> None:
    """A failed import (the stored file is unreadable) is retried once the file is repaired:
    a new import job runs and the annotation reaches to_review; bulk retry takes several."""
    ids = await submit(admin, [("a.pdf", BROKEN_PDF), ("b.pdf", BROKEN_PDF + b"b")])
    for annotation_id in ids:
        await wait_status(server, annotation_id, "failed_import")
    async with console(server) as browser:
        await browser.login(ADMIN_USER, ADMIN_PASSWORD)
        status, page, _ = await browser.get("/failed")
        assert status == 200 and "a.pdf" in page and "b.pdf" in page
        assert "could not be read" in page or "PDF" in page
        for annotation_id in ids:
            await repair_blob(server, annotation_id, make_pdf(2))
        form = aiohttp.FormData()
        form.add_field("csrf_token", csrf_of(page))
        for annotation_id in ids:
            form.add_field("annotation", str(annotation_id))
        status, _, response = await browser.post("/failed/retry", form)
        assert status == 303
        assert response.headers["Location"].startswith("/failed?retried=")
        for annotation_id in ids:
            await wait_status(server, annotation_id, "to_review")
        status, page, _ = await browser.get("/failed")
        assert "Nothing has failed" in page
        _, body = await admin.get(f"/annotations/{ids[0]}")
        assert body["messages"] == []
        rt = server.service.runtime
        assert rt is not None
        jobs = await job_rows(rt, ids[0])
        assert [(j.kind, j.status) for j in jobs] == [("import", "done"), ("import", "done")]


async def test_logout_revokes_the_session(server: RunningServer, anon: Api) -> None:
    async with console(server) as browser:
        await browser.login(ADMIN_USER, ADMIN_PASSWORD)
        key = browser.session_key()
        assert key
        token = await browser.csrf("/")
        status, _, response = await browser.post("/logout", {"csrf_token": token})
        assert status == 303 and response.headers["Location"] == "/login"
        status, _, response = await browser.get("/failed")
        assert status == 303 and response.headers["Location"].startswith("/login?next=")
    status, _ = await anon.get("/auth/user", headers={"Authorization": f"Bearer {key}"})
    assert status == 401


async def test_console_pages_page_and_filter(server: RunningServer, admin: Api) -> None:
    ids = await submit(admin, [(f"f{n}.pdf", BROKEN_PDF + bytes([n])) for n in range(3)])
    for annotation_id in ids:
        await wait_status(server, annotation_id, "failed_import")
    async with console(server) as browser:
        await browser.login(ADMIN_USER, ADMIN_PASSWORD)
        status, page, _ = await browser.get("/failed?page_size=2")
        assert page.count('class="failure"') == 2 and "Page 1 of 2" in page
        status, page, _ = await browser.get("/failed?page_size=2&page=2")
        assert page.count('class="failure"') == 1
        status, page, _ = await browser.get("/failed?file_name=f1")
        assert page.count('class="failure"') == 1
        status, page, _ = await browser.get("/failed?queue=abc")
        assert status == 400
        status, page, _ = await browser.get("/documents/999999")
        assert status == 404


def _mail_too_large(port: int) -> tuple[int, bytes]:
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo("sender.example")
        return client.mail("big@example.com", ["SIZE=99999999999"])


async def test_mail_refused_at_mail_from_is_logged(server: RunningServer) -> None:
    """A MAIL refused for its declared size ends the transaction: logged with the 552."""
    assert server.smtp_port is not None
    code, _ = await asyncio.to_thread(_mail_too_large, server.smtp_port)
    assert code == 552
    async with asyncio.timeout(10):
        while True:
            rows = await mail_log_rows(server)
            if rows:
                break
            await asyncio.sleep(0.05)
    [row] = rows
    assert (row.reply_code, row.mail_from, row.helo) == (552, "big@example.com", "sender.example")
    assert row.size == 99999999999 and row.recipients == []


async def test_a_mail_log_that_cannot_be_written_never_breaks_delivery(
    server: RunningServer, admin: Api
) -> None:
    """With the mail log table gone, mail is still accepted (250) and stored."""
    import sqlalchemy as sa

    assert server.smtp_port is not None
    rt = server.service.runtime
    assert rt is not None
    async with rt.db.transaction() as conn:
        await conn.execute(sa.text("DROP TABLE mail_log"))
    to = await inbox_address(server)
    msg = message(to, attachments=[("still.pdf", make_pdf(), "application/pdf")])
    refused = await asyncio.to_thread(send_with_smtplib, server.smtp_port, msg)
    assert refused == {}
    _, emails = await admin.get("/emails")
    assert emails["pagination"]["total"] == 1


async def test_delete_an_annotation_from_its_document_page(
    server: RunningServer, admin: Api
) -> None:
    """An annotator deletes an annotation of their queue from the document page (CSRF checked);
    a viewer sees no Delete button and is refused with 403."""
    [annotation_id] = await submit(admin, [("doomed.pdf", BROKEN_PDF)])
    await wait_status(server, annotation_id, "failed_import")
    _, annotation = await admin.get(f"/annotations/{annotation_id}")
    document_id = annotation["document"].rsplit("/", 1)[1]
    await admin.create_user("console-viewer-d", "viewer", queues=[1])
    async with console(server) as browser:
        await browser.login("console-viewer-d", "console-viewer-d-password")
        status, page, _ = await browser.get(f"/documents/{document_id}")
        assert status == 200 and "doomed.pdf" in page and "delete-one" not in page
        status, _, _ = await browser.post(
            f"/annotations/{annotation_id}/delete", {"csrf_token": csrf_of(page)}
        )
        assert status == 403
    await admin.create_user("console-annotator-d", "annotator", queues=[1])
    async with console(server) as browser:
        await browser.login("console-annotator-d", "console-annotator-d-password")
        status, page, _ = await browser.get(f"/documents/{document_id}")
        assert status == 200 and "delete-one" in page
        status, _, _ = await browser.post(f"/annotations/{annotation_id}/delete", {})
        assert status == 403  # no CSRF token
        status, _, response = await browser.post(
            f"/annotations/{annotation_id}/delete",
            {"csrf_token": csrf_of(page), "document": document_id},
        )
        assert status == 303
        assert response.headers["Location"] == f"/documents/{document_id}?deleted={annotation_id}"
        _, page, _ = await browser.get(response.headers["Location"])
        assert "Deleted annotation" in page and "delete-one" not in page
    assert (await admin.get(f"/annotations/{annotation_id}"))[1]["status"] == "deleted"


async def test_unicode_digits_and_huge_numbers_in_console_urls_are_not_ids(
    server: RunningServer,
) -> None:
    """`²`, `٣` and a 30-digit page are not numbers to the console: the default page, or 404 —
    never a 500 and never document 3."""
    async with console(server) as browser:
        await browser.login(ADMIN_USER, ADMIN_PASSWORD)
        for path in ("/uploads?page=%C2%B2", "/mail?page_size=%D9%A3", "/failed?page=" + "9" * 30):
            status, page, _ = await browser.get(path)
            assert status == 200, (path, page[:200])
        status, _, _ = await browser.get("/documents/%D9%A3")
        assert status == 404
        status, page, _ = await browser.get("/failed")
        status, _, _ = await browser.post(
            "/failed/retry", {"annotation": "\u0663", "csrf_token": csrf_of(page)}
        )
        assert status == 400
