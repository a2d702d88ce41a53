"""Logs: one line per request with ids, JSON or text, never a credential (in-process and `postroom serve`)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest

from postroom import logs
from postroom.config import LogSettings
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, PG_URL, Api, reset_postgres
from tests.subprocess_server import ServeProcess


@pytest.fixture
def json_access_log() -> Iterator[io.StringIO]:
    """Capture the access logger's lines, rendered by the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("postroom.access")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_level)


async def test_one_json_line_per_request_with_user_ids_and_no_secrets(
    server: Any, anon: Api, json_access_log: io.StringIO
) -> None:
    """Each request logs one JSON line with method, path, status, duration, user and URL ids; no password or token."""
    admin = await anon.login(ADMIN_USER, ADMIN_PASSWORD)
    token = admin.headers["Authorization"].split()[1]
    await admin.get("/users/1", expect=200)
    await anon.get("/auth/user")
    lines = [json.loads(line) for line in json_access_log.getvalue().splitlines()]
    assert [(x["message"], x["status"]) for x in lines] == [
        ("POST /api/v1/auth/login", 200),
        ("GET /api/v1/users/1", 200),
        ("GET /api/v1/auth/user", 401),
    ]
    assert lines[1]["user"] == 1 and lines[1]["user_ref"] == 1
    assert "user" not in lines[2]
    assert all(isinstance(x["duration_ms"], float) and x["client"] for x in lines)
    text = json_access_log.getvalue()
    assert ADMIN_PASSWORD not in text and token not in text


def test_text_format_renders_fields_as_key_values_and_redacts_secrets() -> None:
    """The text formatter appends key=value fields and masks any field named like a secret."""
    stream = io.StringIO()
    logs.configure_logging(LogSettings(level="INFO", format="text"), stream)
    try:
        log = logging.getLogger("postroom.test")
        logs.event(log, "job finished", annotation=7, queue=2, outcome="to_review", password="pw1")
        logs.event(log, "debug detail", level=logging.DEBUG, annotation=8)
    finally:
        logging.getLogger().handlers.clear()
    line = stream.getvalue().strip()
    assert "\n" not in line
    assert line.endswith(
        "INFO postroom.test job finished annotation=7 queue=2 outcome=to_review password=***"
    )
    assert "pw1" not in line


@pytest.mark.slow
async def test_serve_writes_json_lines_when_configured(tmp_path: Path) -> None:
    """`postroom serve` with log.format=json writes only JSON lines to its log, one per request."""
    if PG_URL:
        await reset_postgres(PG_URL)
    proc = ServeProcess(tmp_path / "data", POSTROOM_LOG_FORMAT="json", POSTROOM_LOG_LEVEL="INFO")
    proc.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(proc.base + "/api/v1/groups?marker=1") as response,
        ):
            assert response.status == 401
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    records = []
    for line in proc.output().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    access = [r for r in records if r["logger"] == "postroom.access"]
    assert any(r["message"] == "GET /api/v1/groups" and r["status"] == 401 for r in access)
    assert all(r["level"] in ("INFO", "WARNING", "ERROR") for r in records)


async def test_upload_line_carries_the_queue_and_never_the_content(
    admin: Api, json_access_log: io.StringIO
) -> None:
    """An upload's log line names the queue and the status; the file's bytes never reach the log."""
    form = aiohttp.FormData()
    form.add_field("content", b"CONFIDENTIAL-INVOICE-7781 total 99 EUR\n", filename="inv.txt")
    form.add_field("metadata", '{"secret_note": "hush-4411"}')
    status, body = await admin.post("/queues/1/upload", data=form)
    assert status == 201, body
    lines = [json.loads(line) for line in json_access_log.getvalue().splitlines()]
    upload = next(x for x in lines if x["message"] == "POST /api/v1/queues/1/upload")
    assert upload["status"] == 201 and upload["queue"] == 1 and upload["user"] == 1
    text = json_access_log.getvalue()
    assert "CONFIDENTIAL-INVOICE" not in text and "hush-4411" not in text


@pytest.fixture
def json_event_log() -> Iterator[io.StringIO]:
    """Capture the pipeline's and the SMTP listener's event lines as JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    loggers = [logging.getLogger("postroom.pipeline"), logging.getLogger("postroom.smtp")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield stream
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_job_outcome_and_smtp_transaction_each_log_one_line_with_ids(
    server: Any, admin: Api, json_event_log: io.StringIO
) -> None:
    """A finished import logs its annotation, upload and status; an accepted mail logs its email ids."""
    from tests.pipeline_support import make_pdf, settled, submit
    from tests.smtp_support import message, send

    (annotation_id,) = await submit(admin, [("a.pdf", make_pdf(1))], queue_id=1)
    await settled(admin, annotation_id)
    _, queue = await admin.get("/queues/1", expect=200)
    _, inbox = await admin.get(queue["inbox"], expect=200)
    await send(
        server, message(inbox["email"], attachments=[("m.pdf", make_pdf(1), "application/pdf")])
    )
    lines = [json.loads(line) for line in json_event_log.getvalue().splitlines()]
    imports = [x for x in lines if x["message"] == "import finished"]
    assert any(x["annotation"] == annotation_id and x["status"] == "to_review" for x in imports)
    mails = [x for x in lines if x["message"] == "mail accepted"]
    assert len(mails) == 1 and mails[0]["emails"] and inbox["email"] in mails[0]["inboxes"]
    assert "%PDF" not in json_event_log.getvalue()


def _records(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def _smtp_session(port: int, sender: str, recipient: str, data: bytes | None) -> int:
    """One SMTP session: EHLO, MAIL, RCPT and (if `data`) DATA; the last reply code."""
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30, local_hostname="mx.test")
    await client.connect()
    try:
        await client.ehlo()
        await client.mail(sender)
        try:
            await client.rcpt(recipient)
        except aiosmtplib.SMTPRecipientRefused as refused:
            return refused.code
        assert data is not None
        reply = await client.data(data)
        return reply.code
    finally:
        await client.quit()


@pytest.mark.slow
async def test_serve_logs_request_ids_error_codes_and_one_line_per_smtp_session(
    tmp_path: Path,
) -> None:
    """`postroom serve` (JSON logs): every reply carries X-Request-ID (the client's when sane) and
    every line of a request carries it too; 4xx lines carry their code; health checks stay out of
    INFO; each SMTP session is one line with hashed addresses and aiosmtpd's own lines are gone."""
    from tests.smtp_support import message, pdf_bytes

    if PG_URL:
        await reset_postgres(PG_URL)
    proc = ServeProcess(tmp_path / "data", POSTROOM_LOG_FORMAT="json", POSTROOM_LOG_LEVEL="INFO")
    proc.start()
    api = proc.base + "/api/v1"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(api + "/health") as response:
                assert response.status == 200
                generated = response.headers["X-Request-ID"]
            assert len(generated) == 32 and int(generated, 16) >= 0
            async with http.get(api + "/groups", headers={"X-Request-ID": "trace-77.a"}) as r:
                assert r.status == 401 and r.headers["X-Request-ID"] == "trace-77.a"
            async with http.get(api + "/groups", headers={"X-Request-ID": "x" * 129}) as r:
                insane_reply_id = r.headers["X-Request-ID"]
            assert insane_reply_id != "x" * 129 and len(insane_reply_id) == 32
            login = {"username": ADMIN_USER, "password": ADMIN_PASSWORD}
            async with http.post(api + "/auth/login", json=login) as r:
                token = (await r.json())["key"]
            auth = {"Authorization": f"Bearer {token}"}
            async with http.get(api + "/queues/999", headers=auth) as r:
                assert r.status == 404
            async with http.get(api + "/queues/1", headers=auth) as r:
                inbox_url = (await r.json())["inbox"]
            async with http.get(inbox_url, headers=auth) as r:
                inbox = (await r.json())["email"]
            # An import whose empty attachment is dropped: a second line logged by that request.
            raw = message(inbox, attachments=[("void.pdf", b"", "application/pdf")]).as_bytes()
            form = aiohttp.FormData()
            form.add_field("raw_message", raw, filename="m.eml", content_type="message/rfc822")
            form.add_field("recipient", inbox)
            headers = {**auth, "X-Request-ID": "import-req-1"}
            async with http.post(api + "/emails/import", data=form, headers=headers) as r:
                assert r.status == 202, await r.text()
                assert r.headers["X-Request-ID"] == "import-req-1"
        mail = message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")]).as_bytes()
        assert await _smtp_session(proc.smtp_port, "alice@example.org", inbox, mail) == 250
        refused = await _smtp_session(proc.smtp_port, "bob@example.org", "nobody@localhost", None)
        assert refused == 550
    finally:
        proc.signal(signal.SIGTERM)
        assert proc.wait() == 0
    output = proc.output()
    records = _records(output)
    access = [r for r in records if r["logger"] == "postroom.access"]
    assert not [r for r in access if r["message"] == "GET /api/v1/health"]
    traced = [r for r in access if r.get("request_id") == "trace-77.a"]
    assert [(r["status"], r["code"]) for r in traced] == [(401, "authentication_failed")]
    missing = next(r for r in access if r["message"] == "GET /api/v1/queues/999")
    assert missing["code"] == "not_found" and len(missing["request_id"]) == 32
    assert all("code" in r for r in access if 400 <= r["status"] < 500)
    assert all(r["request_id"] for r in access)
    import_lines = [r for r in records if r.get("request_id") == "import-req-1"]
    assert [r["message"] for r in import_lines] == [
        "email attachment 'void.pdf' not kept: empty",
        "POST /api/v1/emails/import",
    ]

    sessions = [r for r in records if r["message"] == "smtp session"]
    assert len(sessions) == 2, sessions
    accepted, rejected = sessions
    assert accepted["client"] == "127.0.0.1" and accepted["helo"] == "mx.test"
    assert accepted["sender"] == hashlib.sha256(b"alice@example.org").hexdigest()[:12]
    assert (accepted["recipients"], accepted["messages"], accepted["reply"]) == (1, 1, "250")
    assert accepted["bytes"] > len(pdf_bytes()) and accepted["duration_ms"] >= 0
    assert (rejected["recipients"], rejected["messages"], rejected["reply"]) == (0, 0, "550")
    assert not [r for r in records if r["logger"].startswith("mail.log")]
    assert "alice@example.org" not in output and "bob@example.org" not in output


async def test_mail_addresses_debug_keeps_them_off_the_session_line(
    server_factory: Any, json_event_log: io.StringIO
) -> None:
    """With `log.mail_addresses = debug` the session line has no sender; a DEBUG line has the
    addresses in plain (for an operator who turned DEBUG on to trace one sender)."""
    from tests.smtp_support import inbox_address, message

    server = await server_factory(POSTROOM_LOG_MAIL_ADDRESSES="debug")
    logging.getLogger("postroom.smtp").setLevel(logging.DEBUG)
    inbox = await inbox_address(server)
    assert server.smtp_port is not None
    raw = message(inbox).as_bytes()
    assert await _smtp_session(server.smtp_port, "carol@example.org", inbox, raw) == 250
    for _ in range(100):  # the line is written when the server sees the connection close
        if "smtp session addresses" in json_event_log.getvalue():
            break
        await asyncio.sleep(0.05)
    lines = [json.loads(line) for line in json_event_log.getvalue().splitlines()]
    (session,) = [x for x in lines if x["message"] == "smtp session"]
    assert "sender" not in session and session["recipients"] == 1
    (detail,) = [x for x in lines if x["message"] == "smtp session addresses"]
    assert detail["level"] == "DEBUG" and detail["sender"] == "carol@example.org"
    assert detail["recipients"] == inbox
