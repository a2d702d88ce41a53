"""The SMTP listener component: aiosmtpd served by `loop.create_server` on the service's own loop.

Not aiosmtpd's threaded `Controller`: sessions share the loop (and the database pool) with the
HTTP API and the workers. `start_smtp` binds `smtp.host:smtp.port` (port 0 picks a free one and
the `Listener` says which) without accepting yet, and returns it with its `serve` function (start
accepting) and its stop function: stop accepting, answer 421 to idle sessions, let deliveries in
flight commit, then close every connection and wait for the notices still being sent.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from postroom.config import SmtpSettings
from postroom.connections import ConnectionGate
from postroom.intake.service import Intake
from postroom.smtp.handler import InboxHandler
from postroom.smtp.session import PostroomSMTP, SessionRegistry

log = logging.getLogger("postroom.smtp")

# Deliveries already past DATA get this long to commit at shutdown (they are fsync + one commit).
STOP_GRACE_S = 30.0


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


@dataclass(frozen=True)
class Listener:
    port: int | None  # None when the listener is disabled
    serve: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


async def start_smtp(intake: Intake, gate: ConnectionGate | None = None) -> Listener:
    """Bind the SMTP listener (unless disabled) without accepting connections until `serve()`;
    stopping it also drains pending notices. OSError when the address cannot be bound.

    `gate` caps the open connections (default: the configured caps, 1024 in total when
    `smtp.max_connections` is 0)."""
    rt = intake.rt
    settings = rt.settings.smtp
    if gate is None:
        total = settings.max_connections or 1024
        gate = ConnectionGate("smtp", total, min(settings.max_connections_per_client, total))
    notifier = intake.notifier
    if not settings.enabled:

        async def drain_only() -> None:
            await notifier.drain(10.0)
            await intake.journal.drain(10.0)
            intake.close()

        return Listener(None, _nothing, drain_only)
    loop = asyncio.get_running_loop()
    context = tls_context(settings)
    handler = InboxHandler(intake, starttls=context is not None)
    registry = SessionRegistry(gate)

    def factory() -> PostroomSMTP:
        return PostroomSMTP(
            handler,
            settings=settings,
            blobs=rt.blobs,
            registry=registry,
            tls_context=context,
            loop=loop,
            mail_addresses=rt.settings.log.mail_addresses,
        )

    server = await loop.create_server(
        factory, host=settings.host, port=settings.port, start_serving=False
    )
    port = server.sockets[0].getsockname()[1]

    async def serve() -> None:
        await server.start_serving()
        log.info("SMTP listening on %s:%s", settings.host, port)

    async def stop() -> None:
        server.close()
        await registry.close(STOP_GRACE_S)
        await notifier.drain(10.0)
        await intake.journal.drain(10.0)
        await server.wait_closed()
        intake.close()

    return Listener(port, serve, stop)
