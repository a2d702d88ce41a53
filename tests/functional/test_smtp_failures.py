"""When storing fails the SMTP answer is 451 4.3.0 (the sender retries) with no exception text, and
the message sent again later is stored once. Failures are real: a database that refuses writes
(a trigger), a PostgreSQL database that refuses connections, a blob store that cannot create its
directories. Also: timeouts, the command limit, per-address rate limits, graceful stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiosmtplib
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from postroom.db import tables as t
from postroom.smtp import replies
from tests.conftest import PG_URL, RunningServer
from tests.smtp_support import (
    SENDER,
    emails,
    inbox_address,
    message,
    pdf_bytes,
    rows,
    send,
    wait_for,
)

FAIL_SQLITE = (
    "CREATE TRIGGER fail_emails BEFORE INSERT ON emails "
    "BEGIN SELECT RAISE(ABORT, 'simulated storage failure'); END"
)
FAIL_PG = (
    "CREATE FUNCTION fail_emails() RETURNS trigger AS $$ BEGIN "
    "RAISE EXCEPTION 'simulated storage failure'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER fail_emails BEFORE INSERT ON emails FOR EACH ROW EXECUTE FUNCTION fail_emails()",
)
UNFAIL_PG = ("DROP TRIGGER fail_emails ON emails", "DROP FUNCTION fail_emails()")


async def _ddl(server: RunningServer, statements: tuple[str, ...]) -> None:
    services = server.service.runtime
    assert services is not None
    async with services.db.transaction() as conn:
        for statement in statements:
            await conn.execute(sa.text(statement))


async def _refuse_writes(server: RunningServer) -> None:
    await _ddl(server, FAIL_PG if PG_URL else (FAIL_SQLITE,))


async def _allow_writes(server: RunningServer) -> None:
    await _ddl(server, UNFAIL_PG if PG_URL else ("DROP TRIGGER fail_emails",))


async def _session_to_rcpt(server: RunningServer, inbox: str) -> aiosmtplib.SMTP:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.smtp_port, timeout=30)
    await client.connect()
    await client.ehlo()
    await client.mail(SENDER)
    await client.rcpt(inbox)
    return client


def _raw(msg: object) -> bytes:
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))  # type: ignore[attr-defined]


async def test_database_refusing_writes_is_451_and_resend_is_stored_once(
    server: RunningServer,
) -> None:
    """DATA answered while the database refuses inserts gets exactly the 451 4.3.0 reply; the same message resent later is stored once."""
    inbox = await inbox_address(server)
    raw = _raw(message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")]))
    client = await _session_to_rcpt(server, inbox)
    try:
        await _refuse_writes(server)
        with pytest.raises(aiosmtplib.SMTPDataError) as failed:
            await client.data(raw)
        assert f"{failed.value.code} {failed.value.message}" == replies.STORAGE_FAILED
    finally:
        await client.quit()
    assert await emails(server) == []
    await _allow_writes(server)
    for _ in range(2):  # the retry, and a duplicate retry after a lost 250
        await send(server, raw, recipients=[inbox])
    assert len(await emails(server)) == 1
    assert len(await rows(server, t.annotations)) == 1


async def test_blob_store_failure_is_451(server: RunningServer) -> None:
    """When the blob store cannot create its directories, DATA gets 451 4.3.0 and no record is made."""
    inbox = await inbox_address(server)
    blobs = server.data_dir / "blobs"
    moved = server.data_dir / "blobs-away"
    blobs.rename(moved)
    blobs.write_bytes(b"not a directory")  # every new blob path now fails with NotADirectoryError
    try:
        with pytest.raises(aiosmtplib.SMTPDataError) as failed:
            await send(server, message(inbox), recipients=[inbox])
        assert f"{failed.value.code} {failed.value.message}" == replies.STORAGE_FAILED
    finally:
        blobs.unlink()
        moved.rename(blobs)
    assert await emails(server) == []
    await send(server, message(inbox), recipients=[inbox])
    assert len(await emails(server)) == 1


@pytest.fixture
async def admin_pg() -> AsyncIterator[object]:
    """An engine on the cluster's `postgres` database, to switch the test database off and on."""
    if not PG_URL:
        pytest.skip("needs PostgreSQL (POSTROOM_DATABASE_URL)")
    engine = create_async_engine(
        make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    yield engine
    await engine.dispose()


async def _set_connections(engine: object, database: str, allowed: bool) -> None:
    async with engine.connect() as conn:  # type: ignore[attr-defined]
        await conn.execute(
            sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        )
        if not allowed:
            await conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )


async def test_postgres_unavailable_mid_session_is_451(
    server: RunningServer, admin_pg: object
) -> None:
    """PostgreSQL going away between RCPT and DATA gives 451 4.3.0; once it is back, the resent message is stored once."""
    database = make_url(PG_URL).database
    assert database
    inbox = await inbox_address(server)
    raw = _raw(message(inbox, attachments=[("a.pdf", pdf_bytes(), "application/pdf")]))
    client = await _session_to_rcpt(server, inbox)
    try:
        await _set_connections(admin_pg, database, allowed=False)
        with pytest.raises(aiosmtplib.SMTPDataError) as failed:
            await client.data(raw)
        assert f"{failed.value.code} {failed.value.message}" == replies.STORAGE_FAILED
    finally:
        await _set_connections(admin_pg, database, allowed=True)
        await client.quit()
    # Like a sending MTA: retry on 4xx until accepted (a pooled connection may still be dead).
    for _attempt in range(5):
        try:
            await send(server, raw, recipients=[inbox])
            break
        except aiosmtplib.SMTPDataError as error:
            assert error.code == 451
    await send(server, raw, recipients=[inbox])
    assert len(await emails(server)) == 1


async def test_idle_client_gets_421_timeout(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A client silent for longer than smtp.timeout is told 421 4.4.2 and disconnected."""
    server = await server_factory(POSTROOM_SMTP_TIMEOUT="1")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.smtp_port)
    greeting = await reader.readline()
    assert greeting.startswith(b"220 ")
    rest = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert rest.decode().startswith("421 4.4.2 ")


async def test_command_limit_closes_the_connection(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Past smtp.max_commands uses of one command the session is closed with 421."""
    server = await server_factory(POSTROOM_SMTP_MAX_COMMANDS="10")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.smtp_port)
    await reader.readline()
    writer.write(b"NOOP\r\n" * 12)
    await writer.drain()
    transcript = (await asyncio.wait_for(reader.read(), 30)).decode().splitlines()
    writer.close()
    assert transcript[:10] == ["250 2.0.0 OK"] * 10
    assert transcript[10].startswith("421 4.7.0 ")


async def test_connection_rate_limit_is_421(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A client address over limits.smtp_connections_per_minute is greeted with 421 4.7.0."""
    server = await server_factory(POSTROOM_LIMITS_SMTP_CONNECTIONS_PER_MINUTE="1")
    first = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.smtp_port, timeout=30)
    await first.connect()
    await first.quit()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.smtp_port)
    line = await asyncio.wait_for(reader.readline(), 30)
    writer.close()
    assert line.decode().rstrip() == replies.RATE_LIMITED_CONNECTIONS


async def test_message_rate_limit_is_451(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A client address over limits.smtp_messages_per_minute gets 451 4.7.1 at MAIL FROM."""
    server = await server_factory(POSTROOM_LIMITS_SMTP_MESSAGES_PER_MINUTE="1")
    inbox = await inbox_address(server)
    await send(server, message(inbox))
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
        await send(server, message(inbox))
    assert (refused.value.code, refused.value.message[:6]) == (451, "4.7.1 ")


async def test_stop_says_421_to_idle_sessions(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Stopping the service answers 421 4.3.2 to an idle session before closing it."""
    server = await server_factory()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.smtp_port)
    await reader.readline()
    await server.service.stop()
    rest = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    assert rest.decode().rstrip() == replies.SHUTTING_DOWN


async def test_client_hanging_up_mid_data_leaves_nothing(server: RunningServer) -> None:
    """A client that disconnects in the middle of DATA leaves no record and no temp file; the next session works."""
    inbox = await inbox_address(server)
    temp_dir = server.data_dir / "tmp"
    reader, writer = await asyncio.open_connection("127.0.0.1", server.smtp_port)
    writer.write(f"EHLO c\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<{inbox}>\r\nDATA\r\n".encode())
    while not (await reader.readline()).startswith(b"354"):
        pass
    writer.write(b"Subject: cut\r\n\r\n" + b"x" * 3_000_000)  # past the in-memory part
    await writer.drain()

    async def spooling() -> bool:
        return any(temp_dir.iterdir())

    await wait_for(spooling, 30)  # the message is being written to a temp file
    writer.close()

    async def no_temp_files() -> bool:
        return not any(temp_dir.iterdir())

    await wait_for(no_temp_files, 30)
    await send(server, message(inbox), recipients=[inbox])
    (stored,) = await emails(server)
    assert stored.subject == "Invoice 42"
