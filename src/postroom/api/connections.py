"""The API's connections: caps at accept, a header read deadline, the keep-alive timeout.

`GuardedSite` serves the aiohttp runner on a bound socket like `web.SockSite`, but each accepted
connection gets a `GuardedHandler`:

- it is counted in the listener's `ConnectionGate`; over the per-client or the total cap the
  client gets a ready-made `503` (`Connection: close`, `Retry-After`) and the socket is closed
  (at most `REFUSED_LINGER_S` later) without a byte of its request being parsed;
- a request's headers must be complete within `http.header_timeout_s` of its first byte (and the
  first request's within that of the connection's opening), else the connection is closed: a
  client trickling header bytes cannot hold a socket forever;
- between requests aiohttp's own keep-alive timer (`http.keepalive_timeout_s`) closes an idle
  connection.

aiohttp has no header deadline of its own; the handler reads a few of `RequestHandler`'s private
fields (`_messages`, `_request_in_progress`) to know whether a request is being read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from postroom import metrics
from postroom.connections import ConnectionGate

log = logging.getLogger("postroom.connections")

# A refused connection reads and drops its client's bytes this long before it is closed.
REFUSED_LINGER_S = 1.0


def _refusal(scope: str) -> bytes:
    whose = "from your address" if scope == "client" else "to this server"
    body = json.dumps(
        {
            "detail": f"Too many open connections {whose}; retry later.",
            "code": "service_unavailable",
        }
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHandler(RequestHandler):
    """aiohttp's request handler behind the connection caps and the header deadline."""

    def __init__(
        self, manager: web.Server, *, gate: ConnectionGate, header_timeout_s: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._gate = gate
        self._header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None
        self._address: str | None = None  # set once admitted
        self._refused = False
        self._refused_close: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        scope = self._gate.admit(address)
        if scope is not None:
            self._refused = True
            log.warning("HTTP connection refused: %s cap reached (client %s)", scope, address)
            assert isinstance(transport, asyncio.Transport)
            transport.write(_refusal(scope))
            # Half-close and discard what the client still sends for a moment: closing with its
            # request unread would reset the connection, and the client might never see the 503.
            transport.write_eof()
            self._refused_close = self._loop.call_later(REFUSED_LINGER_S, transport.close)
            return
        self._address = address
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            if self._refused_close is not None:
                self._refused_close.cancel()
            return
        self._disarm_header_timer()
        if self._address is not None:
            self._gate.release(self._address)
            self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if data and self._between_requests():
            self._arm_header_timer()  # the first byte of a request: its headers' clock starts
        super().data_received(data)
        if self._messages:  # headers complete (the request is queued for the handler)
            self._disarm_header_timer()

    def _between_requests(self) -> bool:
        return not self._request_in_progress and not self._messages

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self._loop.call_later(
                self._header_timeout_s, self._header_deadline
            )

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline(self) -> None:
        self._header_timer = None
        if not self._between_requests() or self.transport is None:
            return
        metrics.CONNECTIONS_TIMED_OUT.labels(protocol="http", phase="header").inc()
        log.info(
            "HTTP connection closed: request headers not complete in %gs", self._header_timeout_s
        )
        self.force_close()


class GuardedSite(web.SockSite):
    """`web.SockSite` whose connections are `GuardedHandler`s."""

    def __init__(
        self,
        runner: web.AppRunner,
        sock: Any,
        *,
        gate: ConnectionGate,
        header_timeout_s: float,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, sock, backlog=backlog)
        self._gate = gate
        self._header_timeout_s = header_timeout_s

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        options = dict(server._kwargs)  # the runner's handler options (keep-alive timeout, …)

        def handler() -> GuardedHandler:
            return GuardedHandler(
                server,
                gate=self._gate,
                header_timeout_s=self._header_timeout_s,
                loop=loop,
                **options,
            )

        self._server = await loop.create_server(handler, sock=self._sock, backlog=self._backlog)
