"""Composition root: configuration → runtime → application services → edges, and their start and
stop order. HTTP, SMTP and the pipeline share one event loop and one database pool.

Start: raise the open file limit and fit the connection caps to it, migrate, bind the HTTP socket
(so a port of 0 resolves at once), build the `Runtime`, start the pipeline workers and background
duties, bind the SMTP listener (its connections capped), and only once every listener is bound
bootstrap the first records (a first start that fails on a port in use creates no admin whose
generated password nobody saw); then accept SMTP and serve HTTP behind the connection caps and the
header deadline (`api.connections`). Stop, in reverse: stop accepting HTTP and let in-flight
requests finish, close SMTP (in-flight deliveries commit), stop the duties and workers (unfinished
jobs released), and close the database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from postroom.api.connections import GuardedSite
from postroom.api.server import build_app
from postroom.config import Settings
from postroom.connections import ConnectionGate, fit_caps, raise_fd_limit
from postroom.console import install as install_console
from postroom.db.engine import Database
from postroom.db.migrate import apply_migrations
from postroom.domain.bootstrap import FirstStart, bootstrap_if_empty
from postroom.intake.notify import Notifier
from postroom.intake.service import Intake
from postroom.pipeline.duties import start_duties
from postroom.pipeline.workers import start_workers
from postroom.runtime import Runtime
from postroom.smtp.server import start_smtp

log = logging.getLogger("postroom")

Stop = Callable[[], Awaitable[None]]


class ListenError(Exception):
    """A listener could not bind its address (port in use, address not available, no right)."""


def _listen_error(what: str, host: str, port: int, error: OSError) -> ListenError:
    reason = os.strerror(error.errno).lower() if error.errno else str(error)
    return ListenError(f"cannot listen on {host}:{port} ({what}): {reason}")


@dataclass
class Running:
    http_port: int
    smtp_port: int | None
    first_start: FirstStart | None


class Service:
    """One running Postroom: `await start()`, then `await stop()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runner: web.AppRunner | None = None
        self._stops: list[Stop] = []
        self.runtime: Runtime | None = None
        self.smtp_port: int | None = None
        self.gates: tuple[ConnectionGate, ConnectionGate] | None = None  # (HTTP, SMTP)

    async def start(self) -> Running:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.gates = _connection_gates(settings)
        db = Database(
            settings.database_url,
            pool_size=settings.database.pool_size,
            sqlite_synchronous=settings.database.sqlite_synchronous,
        )
        try:
            await apply_migrations(db)
            sock = self._bind_http()
        except BaseException:
            await db.dispose()
            raise
        try:
            return await self._start_on(db, sock)
        except BaseException:
            sock.close()
            if self.runtime is None:
                await db.dispose()
            await self.stop()
            raise

    def _bind_http(self) -> socket.socket:
        host, port = self.settings.http.host, self.settings.http.port
        try:
            return socket.create_server((host, port), reuse_port=False)
        except OSError as error:
            raise _listen_error("http.port", host, port, error) from error

    async def _start_on(self, db: Database, sock: socket.socket) -> Running:
        http_port = sock.getsockname()[1]
        settings = self.settings = self.settings.replace("http", port=http_port)
        rt = self.runtime = Runtime.build(settings, db)
        rt.blobs.sweep_temp()
        notifier = Notifier(rt)
        intake = Intake(rt, notifier)
        self._stops.append(await start_workers(rt))
        self._stops.append(await start_duties(rt))
        assert self.gates is not None
        http_gate, smtp_gate = self.gates
        try:
            listener = await start_smtp(intake, smtp_gate)
        except OSError as error:
            raise _listen_error(
                "smtp.port", settings.smtp.host, settings.smtp.port, error
            ) from error
        self.smtp_port = listener.port
        self._stops.append(listener.stop)
        # Every listener is bound: only now can a first start's generated password be shown.
        first = await bootstrap_if_empty(db, settings)
        await listener.serve()
        app = build_app(rt, intake)
        install_console(app, rt)
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=settings.http.shutdown_timeout,
            keepalive_timeout=settings.http.keepalive_timeout_s,
        )
        await self._runner.setup()
        site = GuardedSite(
            self._runner, sock, gate=http_gate, header_timeout_s=settings.http.header_timeout_s
        )
        await site.start()
        return Running(http_port=http_port, smtp_port=self.smtp_port, first_start=first)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, stop components, close the database."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for stop in reversed(self._stops):
            try:
                await stop()
            except Exception:
                log.exception("error while stopping a component")
        self._stops.clear()
        if self.runtime is not None:
            await self.runtime.db.dispose()
            self.runtime = None


def _connection_gates(settings: Settings) -> tuple[ConnectionGate, ConnectionGate]:
    """The HTTP and SMTP connection caps, fitted to the open file limit (raised first)."""
    caps = fit_caps(
        raise_fd_limit(),
        settings.http.max_connections,
        settings.smtp.max_connections,
        smtp_enabled=settings.smtp.enabled,
    )
    http = ConnectionGate(
        "http", caps.http_total, min(settings.http.max_connections_per_client, caps.http_total)
    )
    smtp = ConnectionGate(
        "smtp", caps.smtp_total, min(settings.smtp.max_connections_per_client, caps.smtp_total)
    )
    return http, smtp


async def run_until_signalled(service: Service) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await service.stop()
