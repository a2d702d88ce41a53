"""Composition root: builds every part and runs HTTP, SMTP and pipeline workers on one event loop."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from postroom.accounts import BasicCredentialCache
from postroom.bootstrap import FirstStart, bootstrap_if_empty
from postroom.config import Settings
from postroom.db.engine import Database
from postroom.db.migrate import apply_migrations
from postroom.intake.blobs import LocalBlobStore
from postroom.ratelimit import RateLimits
from postroom.services import Services
from postroom.web.app import build_app
from postroom.web.urls import Urls

log = logging.getLogger("postroom")

# Parts that later issues plug in (SMTP listener, pipeline workers, background duties): each is
# started with the services and returns an async stop function.
Component = Callable[[Services], Awaitable[Callable[[], Awaitable[None]]]]


@dataclass
class Running:
    http_port: int
    smtp_port: int | None
    first_start: FirstStart | None


class Service:
    def __init__(self, settings: Settings, components: tuple[Component, ...] | None = None) -> None:
        self.settings = settings
        self._components = components if components is not None else default_components()
        self._runner: web.AppRunner | None = None
        self._stops: list[Callable[[], Awaitable[None]]] = []
        self.services: Services | None = None

    async def start(self) -> Running:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(
            settings.database_url,
            pool_size=settings.database.pool_size,
            sqlite_synchronous=settings.database.sqlite_synchronous,
        )
        try:
            await apply_migrations(db)
            first = await bootstrap_if_empty(db, settings)
        except BaseException:
            await db.dispose()
            raise
        blobs = LocalBlobStore(settings.data_dir)
        blobs.sweep_temp()

        sock = socket.create_server((settings.http.host, settings.http.port), reuse_port=False)
        http_port = sock.getsockname()[1]
        settings = settings.replace("http", port=http_port)
        self.settings = settings
        services = Services(
            settings=settings,
            db=db,
            blobs=blobs,
            urls=Urls(settings.base_url),
            basic_cache=BasicCredentialCache(settings.auth.basic_cache_s),
            rate_limits=RateLimits(settings.limits, settings.http.forwarded_allow_ips),
        )
        self.services = services
        for component in self._components:
            self._stops.append(await component(services))
        self._runner = web.AppRunner(
            build_app(services),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=settings.http.shutdown_timeout,
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return Running(http_port=http_port, smtp_port=self.smtp_port, first_start=first)

    @property
    def smtp_port(self) -> int | None:
        return getattr(self.services, "smtp_port", None) if self.services else None

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
        if self.services is not None:
            await self.services.db.dispose()
            self.services = None


def default_components() -> tuple[Component, ...]:
    """The pipeline workers, the background duties and the SMTP listener, in start order."""
    from postroom.pipeline.duties import start_duties
    from postroom.pipeline.workers import start_workers
    from postroom.smtp.server import start_smtp

    return (start_workers, start_duties, start_smtp)


async def run_until_signalled(service: Service) -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await service.stop()
