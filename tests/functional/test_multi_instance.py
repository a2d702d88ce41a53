"""Two real `postroom serve` processes on one PostgreSQL database and one data dir; one is SIGKILLed.

Uploads and mail go to both instances at once; instance A is killed with SIGKILL in the middle
of the stream (requests, SMTP sessions and pipeline jobs in flight), then restarted. Every item
that was acknowledged (HTTP 201, SMTP 250) must end up processed exactly once: one document and
one annotation per acknowledged file, in `to_review`, with one finished import job, and nothing
left in `importing`. What was never acknowledged may or may not exist, but never twice.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from postroom.db import tables as t
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, PG_URL, reset_postgres
from tests.smtp_support import SENDER, message, pdf_bytes
from tests.subprocess_server import ServeProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not PG_URL,
        reason="several instances share one database only on PostgreSQL "
        "(set POSTROOM_DATABASE_URL); SQLite is single-process by design",
    ),
]

ENV = {
    "POSTROOM_LIMITS_REQUESTS_PER_SECOND": "100000",
    "POSTROOM_LIMITS_BURST": "100000",
    "POSTROOM_PIPELINE_WORKERS": "3",
    "POSTROOM_PIPELINE_SWEEP_INTERVAL": "1",
    "POSTROOM_LOG_LEVEL": "WARNING",
}
UPLOAD_STREAMS = 3  # concurrent HTTP clients per instance
FILES_PER_STREAM = 20
MAILS_PER_INSTANCE = 8
KILL_AFTER_ACKS = 12  # acknowledged uploads on A before it is killed


@dataclass
class Ledger:
    """What the clients were told: acknowledged uploads (file name) and mails (Message-ID)."""

    uploads: set[str] = field(default_factory=set)
    mails: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    acked_on: dict[int, int] = field(default_factory=dict)  # instance index → upload acks
    a_is_busy: asyncio.Event = field(default_factory=asyncio.Event)

    def ack_upload(self, name: str, instance: int) -> None:
        self.uploads.add(name)
        self.acked_on[instance] = self.acked_on.get(instance, 0) + 1
        if self.acked_on.get(0, 0) >= KILL_AFTER_ACKS:
            self.a_is_busy.set()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[ServeProcess]]:
    """Instance A bootstraps the database, then B joins it with the same data dir."""
    await reset_postgres(PG_URL)
    data = tmp_path / "data"
    procs = [ServeProcess(data, **ENV), ServeProcess(data, **ENV)]
    try:
        for proc in procs:
            await asyncio.to_thread(proc.start)
        yield procs
    finally:
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is None:
                proc.signal(signal.SIGTERM)
                try:
                    await asyncio.to_thread(proc.wait, 20)
                except Exception:
                    await asyncio.to_thread(proc.kill)


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(PG_URL)
    yield engine
    await engine.dispose()


async def login(http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    body = {"username": ADMIN_USER, "password": ADMIN_PASSWORD}
    async with http.post(base + "/api/v1/auth/login", json=body) as response:
        assert response.status == 200
        return {"Authorization": f"Bearer {(await response.json())['key']}"}


async def upload_stream(
    http: aiohttp.ClientSession,
    proc: ServeProcess,
    index: int,
    headers: dict[str, str],
    names: list[str],
    ledger: Ledger,
) -> None:
    """Upload one file per name, in order; a connection error means it was not acknowledged."""
    for name in names:
        form = aiohttp.FormData()
        form.add_field("content", f"Invoice {name}\nTotal 10 EUR\n".encode(), filename=name)
        try:
            async with http.post(
                f"{proc.base}/api/v1/queues/1/upload", data=form, headers=headers
            ) as response:
                if response.status == 201:
                    ledger.ack_upload(name, index)
                else:
                    ledger.refused.append(f"{name}: {response.status}")
        except (aiohttp.ClientError, ConnectionError):
            ledger.refused.append(f"{name}: connection lost")


async def mail_stream(proc: ServeProcess, inbox: str, tag: str, ledger: Ledger) -> None:
    """Send mails with one PDF each, one SMTP session per mail; 250 means acknowledged."""
    for i in range(MAILS_PER_INSTANCE):
        msg: EmailMessage = message(
            inbox, attachments=[(f"{tag}-{i}.pdf", pdf_bytes(), "application/pdf")]
        )
        try:
            await aiosmtplib.send(
                msg,
                sender=SENDER,
                recipients=[inbox],
                hostname="127.0.0.1",
                port=proc.smtp_port,
                timeout=30,
            )
        except (aiosmtplib.SMTPException, OSError):
            ledger.refused.append(f"mail {tag}-{i}")
        else:
            ledger.mails.add(str(msg["Message-ID"]))


async def kill_when_busy(proc: ServeProcess, ledger: Ledger) -> None:
    """SIGKILL instance A once it has acknowledged some uploads (others are in flight)."""
    await ledger.a_is_busy.wait()
    await asyncio.to_thread(proc.kill)


async def wait_until_settled(engine: AsyncEngine, limit_s: float = 120.0) -> None:
    """Until no annotation is importing and no job is queued or running (leases expire in 3 s)."""
    a, j = t.annotations.c, t.jobs.c
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        async with engine.connect() as conn:
            importing = await conn.scalar(sa.select(sa.func.count()).where(a.status == "importing"))
            pending = await conn.scalar(
                sa.select(sa.func.count()).where(j.status.in_(("queued", "running")))
            )
        if importing == 0 and pending == 0:
            return
        assert loop.time() < deadline, f"{importing} importing, {pending} jobs pending"
        await asyncio.sleep(0.5)


async def inbox_email(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return str(
            await conn.scalar(
                sa.select(t.inboxes.c.email)
                .select_from(t.queues.join(t.inboxes, t.queues.c.inbox_id == t.inboxes.c.id))
                .where(t.queues.c.id == 1)
            )
        )


async def test_acknowledged_items_are_processed_exactly_once_across_a_crash(
    cluster: list[ServeProcess], engine: AsyncEngine
) -> None:
    """Uploads and mail to two instances, one SIGKILLed mid-stream and restarted: each acknowledged item is processed once."""
    a_proc = cluster[0]
    ledger = Ledger()
    inbox = await inbox_email(engine)
    async with aiohttp.ClientSession() as http:
        headers = await login(http, a_proc.base)  # tokens live in the shared database
        work = []
        for index, proc in enumerate(cluster):
            for s in range(UPLOAD_STREAMS):
                names = [f"i{index}-s{s}-{n:02d}.txt" for n in range(FILES_PER_STREAM)]
                work.append(upload_stream(http, proc, index, headers, names, ledger))
            work.append(mail_stream(proc, inbox, f"m{index}", ledger))
        await asyncio.gather(kill_when_busy(a_proc, ledger), *work)

        # A comes back on the same ports and data dir, and takes work again.
        await asyncio.to_thread(a_proc.start)
        after = [f"after-restart-{n:02d}.txt" for n in range(5)]
        await upload_stream(http, a_proc, 0, headers, after, ledger)
        assert set(after) <= ledger.uploads

    assert any("connection lost" in r for r in ledger.refused), "A was killed before any loss"
    assert len(ledger.uploads) >= KILL_AFTER_ACKS + UPLOAD_STREAMS * FILES_PER_STREAM
    await wait_until_settled(engine)
    await check_uploads(engine, ledger)
    await check_mails(engine, ledger)
    async with engine.connect() as conn:
        workers = await conn.scalar(sa.select(sa.func.count(sa.distinct(t.jobs.c.claimed_by))))
    assert workers >= 2, "the work was not shared between the instances"


async def check_uploads(engine: AsyncEngine, ledger: Ledger) -> None:
    d, a, j = t.documents.c, t.annotations.c, t.jobs.c
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    d.original_file_name, a.id, a.status, sa.func.count(j.id), sa.func.min(j.status)
                )
                .select_from(
                    t.documents.join(t.annotations, a.document_id == d.id).outerjoin(
                        t.jobs, sa.and_(j.annotation_id == a.id, j.kind == "import")
                    )
                )
                .where(d.email_id.is_(None))
                .group_by(d.original_file_name, a.id, a.status)
            )
        ).all()
    per_name: dict[str, list[Any]] = {}
    for row in rows:
        per_name.setdefault(row[0], []).append(row)
    for name in ledger.uploads:
        found = per_name.get(name, [])
        assert len(found) == 1, (name, found)  # one document with one annotation
        _, _, status, jobs, job_status = found[0]
        assert status == "to_review", (name, status)
        assert (jobs, job_status) == (1, "done"), (name, jobs, job_status)
    # Unacknowledged uploads may have been committed just before the kill, never twice.
    assert all(len(found) == 1 for found in per_name.values())


async def check_mails(engine: AsyncEngine, ledger: Ledger) -> None:
    e, d, a = t.emails.c, t.documents.c, t.annotations.c
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(e.message_id, e.id, a.status)
                .select_from(
                    t.emails.outerjoin(t.documents, d.email_id == e.id).outerjoin(
                        t.annotations, a.document_id == d.id
                    )
                )
                .where(e.message_id.in_(list(ledger.mails)))
            )
        ).all()
    per_message: dict[str, list[Any]] = {}
    for row in rows:
        per_message.setdefault(row.message_id, []).append(row)
    for message_id in ledger.mails:
        found = per_message.get(message_id, [])
        assert len(found) == 1, (message_id, found)  # one email, one attachment, one annotation
        assert found[0].status == "to_review", (message_id, found)


async def lease_holder_pid(engine: AsyncEngine) -> int | None:
    async with engine.connect() as conn:
        holder = await conn.scalar(sa.select(t.duty_leases.c.holder))
    return int(holder.split(":")[1]) if holder else None


async def test_background_duties_run_in_one_instance_and_move_to_the_survivor(
    cluster: list[ServeProcess], engine: AsyncEngine
) -> None:
    """One instance holds the duty lease; when it is SIGKILLed the other takes over and a due queue deletion still happens."""
    pids = {proc.proc.pid: proc for proc in cluster if proc.proc is not None}
    holder = None
    for _ in range(100):
        holder = await lease_holder_pid(engine)
        if holder in pids:
            break
        await asyncio.sleep(0.1)
    assert holder in pids, holder
    sweeper = pids[holder]
    survivor = next(proc for pid, proc in pids.items() if pid != holder)
    await asyncio.to_thread(sweeper.kill)

    async with aiohttp.ClientSession() as http:
        headers = await login(http, survivor.base)
        async with http.delete(
            survivor.base + "/api/v1/queues/1?delete_after=00:00:01", headers=headers
        ) as response:
            assert response.status == 202
    # The dead sweeper's lease runs out (30 s at most here), then the survivor sweeps.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 90
    while True:
        async with engine.connect() as conn:
            left = await conn.scalar(sa.select(sa.func.count()).where(t.queues.c.id == 1))
        if left == 0:
            break
        assert loop.time() < deadline, "the survivor never ran the queue deletion"
        await asyncio.sleep(0.5)
    assert await lease_holder_pid(engine) == survivor.proc.pid  # type: ignore[union-attr]
