"""Logs: one line per request with ids, JSON or text, never a credential (in-process and `postroom serve`)."""

from __future__ import annotations

import io
import json
import logging
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
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
