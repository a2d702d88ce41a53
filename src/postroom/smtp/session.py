"""One SMTP connection: aiosmtpd's `SMTP` protocol with a streaming DATA phase.

aiosmtpd's own `smtp_DATA` reads one line at a time and keeps the whole message in memory
(~2.5x its size, ~50 MiB/s; docs/MEASURED.md). Here DATA is read in 256 KiB blocks,
the end marker is found and dot-stuffing undone by `dotstream.DotDecoder`, and the message bytes
go straight into a blob-store temp file (hashed on the way) — memory per session stays at a few
blocks whatever the message size. Bytes read past the end marker are the client's next commands
(pipelining) and are handed back to the command reader.

Kept from the stock behaviour: only CRLF.CRLF ends the data (CVE-2024-27305); an oversize message
is read to its end before `552` is sent (replying early and hanging up loses the reply in a TCP
reset); the envelope is reset before the reply. Added: an idle timeout per block and an overall
deadline for the transfer (`smtp.transaction_timeout`), a 421 before any timeout close, and
delivery shielded from a client that hangs up: once the data is complete the message is stored
whatever happens to the connection (a sender that missed our 250 resends; intake dedupes).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import ssl
from typing import Any

from aiosmtpd.smtp import SMTP, syntax

from postroom import logs, metrics
from postroom.blobs.local import BlobWriter, LocalBlobStore
from postroom.config import SmtpSettings
from postroom.connections import ConnectionGate
from postroom.intake.mail_records import RawMessage
from postroom.intake.storing import DISK_FULL
from postroom.smtp import replies
from postroom.smtp.dotstream import DotDecoder
from postroom.smtp.handler import InboxHandler, MailEnvelope, MailSession, peer_address
from postroom.smtp.session_log import SessionLog

log = logging.getLogger("postroom.smtp")
connection_log = logging.getLogger("postroom.connections")

BLOCK = 256 * 1024
FLUSH_BYTES = 1024 * 1024  # message bytes gathered before one write to the temp file
# Past the limit the rest is read and dropped; a client that goes on far beyond it is cut off.
DRAIN_FACTOR = 4


class SessionRegistry:
    """The open connections and the deliveries in flight, for a graceful stop."""

    def __init__(self, gate: ConnectionGate) -> None:
        self.gate = gate  # open connections per client address and in total
        self.sessions: set[PostroomSMTP] = set()
        self.deliveries: set[asyncio.Task[str]] = set()
        self.cleanups: set[asyncio.Task[None]] = set()
        self.closing = False

    def track(self, task: asyncio.Task[Any], into: set[Any]) -> None:
        into.add(task)
        task.add_done_callback(into.discard)

    async def close(self, grace_s: float) -> None:
        """Say 421 to idle sessions, let deliveries finish (bounded), then drop every connection."""
        self.closing = True
        for session in list(self.sessions):
            if not session.receiving:
                session.say_goodbye(replies.SHUTTING_DOWN)
        pending = self.deliveries | self.cleanups
        if pending:
            await asyncio.wait(pending, timeout=grace_s)
        for session in list(self.sessions):
            session.say_goodbye(replies.SHUTTING_DOWN)


class _Spool:
    """The temp file of one incoming message; writes are shielded so a cancelled session never
    closes or removes the file under a write still running in the thread pool.

    Up to FLUSH_BYTES stay in memory: a message that small is written in one piece at the end
    and its bytes are handed to the parser directly (`whole`)."""

    def __init__(self, writer: BlobWriter, registry: SessionRegistry) -> None:
        self.writer = writer
        self.size = 0
        self._registry = registry
        self._inflight: asyncio.Future[None] | None = None
        self._buffer = bytearray()
        self.whole: bytes | None = None
        self.discarded = False
        self.full = False

    async def add(self, data: bytes) -> None:
        self._buffer += data
        self.size += len(data)
        if len(self._buffer) >= FLUSH_BYTES:
            await self._flush_unless_full()

    async def finish(self) -> None:
        """Write what is still buffered; keep the bytes when they are the whole message."""
        if self.writer.size == 0:
            self.whole = bytes(self._buffer)
        await self._flush_unless_full()

    async def _flush_unless_full(self) -> None:
        """`flush`; a full disk sets `full` (the rest of DATA is read and dropped, then 452)."""
        try:
            await self.flush()
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            self.full = True

    async def flush(self) -> None:
        if not self._buffer:
            return
        chunk, self._buffer = bytes(self._buffer), bytearray()
        self._inflight = asyncio.ensure_future(self.writer.write(chunk))
        await asyncio.shield(self._inflight)

    def discard(self) -> None:
        """Drop the temp file once any write in flight has finished (runs detached)."""
        if self.discarded:
            return
        self.discarded = True
        self._buffer = bytearray()
        self._registry.track(asyncio.ensure_future(self._abort()), self._registry.cleanups)

    async def _abort(self) -> None:
        if self._inflight is not None:
            await asyncio.wait([self._inflight])
        await self.writer.abort()


class PostroomSMTP(SMTP):
    def __init__(
        self,
        handler: InboxHandler,
        *,
        settings: SmtpSettings,
        blobs: LocalBlobStore,
        registry: SessionRegistry,
        tls_context: ssl.SSLContext | None,
        loop: asyncio.AbstractEventLoop,
        mail_addresses: str = "hash",
    ) -> None:
        # aiosmtpd keeps this dict on the class, shared by every session, and every EHLO grows it.
        self.command_size_limits = collections.defaultdict(lambda: SMTP.command_size_limit)
        super().__init__(
            handler,
            data_size_limit=None,  # SIZE is advertised and enforced by InboxHandler / smtp_DATA
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=settings.domain,
            ident="Postroom ESMTP",
            tls_context=tls_context,
            require_starttls=settings.require_tls,
            timeout=settings.timeout,
            command_call_limit=settings.max_commands,
            loop=loop,
        )
        self.handler = handler
        self.settings = settings
        self.blobs = blobs
        self.registry = registry
        self.max_bytes = settings.max_message_bytes
        self.receiving = False  # inside DATA, or storing what DATA received
        self._refused: str | None = None
        self._admitted: str | None = None  # the client address the gate counted
        self.mail_addresses = mail_addresses
        self.session_log: SessionLog | None = None  # set when the connection is made

    def _create_envelope(self) -> MailEnvelope:
        self._journal_unfinished()
        return MailEnvelope()

    def _journal_unfinished(self) -> None:
        """A transaction that ends without DATA (RSET, a new MAIL, QUIT, hang-up) is logged with
        its last refusal (every recipient refused, typically)."""
        envelope = getattr(self, "envelope", None)
        if not isinstance(envelope, MailEnvelope) or self.session is None:
            return
        refusals = [r["reply"] for r in envelope.recipients if not r["reply"].startswith("2")]
        reply = refusals[-1] if refusals else "Ended before DATA"
        self.handler.journal(self.session, envelope, reply)

    def _create_session(self) -> MailSession:
        return MailSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        super().connection_made(transport)
        if not first:
            if self.session_log is not None:
                self.session_log.tls = True
            return  # the TLS layer after STARTTLS: same session
        peer = peer_address(transport.get_extra_info("peername"))
        self.session_log = SessionLog(peer, self.mail_addresses)
        self.registry.sessions.add(self)
        metrics.SMTP_SESSIONS.inc()
        address = peer_address(transport.get_extra_info("peername"))
        if self.registry.closing:
            self._refused = replies.SHUTTING_DOWN
            return
        scope = self.registry.gate.admit(address)
        if scope is not None:
            connection_log.warning(
                "SMTP connection refused: %s cap reached (client %s)", scope, address
            )
            self._refused = (
                replies.TOO_MANY_CONNECTIONS if scope == "client" else replies.SERVER_BUSY
            )
            return
        self._admitted = address
        if not self.handler.rate_limits.smtp_connection_allowed(address):
            self._refused = replies.RATE_LIMITED_CONNECTIONS

    def connection_lost(self, error: Exception | None) -> None:
        self.registry.sessions.discard(self)
        if not self.receiving:  # a delivery in flight logs its own outcome
            self._journal_unfinished()
        if self._admitted is not None:
            self.registry.gate.release(self._admitted)
            self._admitted = None
        if self.session_log is not None:
            session = getattr(self, "session", None)
            self.session_log.emit(getattr(session, "host_name", None))
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refused is not None:
            await self.push(self._refused)
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()

    async def push(self, status: str | bytes) -> None:
        if isinstance(status, bytes):
            await super().push(status)
            return
        reply = replies.enhance(status)
        metrics.record_smtp_reply(reply)
        self._note_reply(reply)
        await super().push(reply)
        if reply.startswith("421 ") and self.transport is not None:
            self.transport.close()  # 421: the server closes the channel (RFC 5321 §3.8)

    def _note_reply(self, reply: str) -> None:
        if self.session_log is None:
            return
        envelope = getattr(self, "envelope", None)
        mail_from = getattr(envelope, "mail_from", None)
        rcpt_tos = list(getattr(envelope, "rcpt_tos", None) or [])
        self.session_log.replied(reply, mail_from, rcpt_tos)

    def say_goodbye(self, reply: str) -> None:
        """Write a final reply without waiting for the client, and close."""
        if self.transport is None or self.transport.is_closing():
            return
        self._note_reply(reply)
        with contextlib.suppress(RuntimeError, OSError):
            self._writer.write(reply.encode("ascii") + b"\r\n")
        self.transport.close()

    def _timeout_cb(self) -> None:
        log.debug("%r SMTP timeout", self.session.peer if self.session else None)
        self.say_goodbye(replies.TIMEOUT)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        envelope = self.envelope
        assert isinstance(envelope, MailEnvelope)
        if not envelope.rcpt_tos:
            await self.push(replies.NEED_RCPT)
            return
        if arg:
            await self.push(replies.DATA_SYNTAX)
            return
        await self.push(replies.START_DATA)
        self.receiving = True
        try:
            reply = await self._receive_and_store(envelope)
        finally:
            self.receiving = False
            if self.transport is not None:
                self._reset_timeout()
        # aiosmtpd leaves this method unannotated.
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(reply)

    async def _receive_and_store(self, envelope: MailEnvelope) -> str:
        spool = _Spool(self.blobs.open_writer(), self.registry)
        try:
            complete = await self._receive(spool)
        except BaseException:
            spool.discard()
            raise
        if spool.full:
            spool.discard()
            logs.event(log, "mail deferred: storage full", level=logging.ERROR)
            metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="storage_full").inc()
            return replies.STORAGE_FULL
        if not complete:
            spool.discard()
            metrics.SMTP_MESSAGES.labels(outcome="rejected", reason="too_large").inc()
            self._journal(envelope, replies.SIZE_EXCEEDED, spool.size)
            self._note_data(spool.size, replies.SIZE_EXCEEDED)
            return replies.SIZE_EXCEEDED
        # From here the message is stored even if the client hangs up (a lost 250 means a
        # resend, which intake recognises); only the reply is lost then.
        self._reset_timeout(self.settings.transaction_timeout)
        delivery = asyncio.ensure_future(self._store(spool, envelope))
        self.registry.track(delivery, self.registry.deliveries)
        delivery.add_done_callback(
            lambda done: self._note_data(
                spool.size,
                replies.STORAGE_FAILED if done.cancelled() or done.exception() else done.result(),
            )
        )
        return await asyncio.shield(delivery)

    def _note_data(self, size: int, reply: str) -> None:
        if self.session_log is not None:
            self.session_log.received(size, reply)

    async def _receive(self, spool: _Spool) -> bool:
        """Read DATA to its end marker into the spool; False when it exceeded the size limit."""
        loop = self.loop
        deadline = loop.time() + self.settings.transaction_timeout
        decoder = DotDecoder()
        too_big = False
        drained = 0
        reader: Any = self._reader
        reader._limit = BLOCK  # let the reader buffer whole blocks (its limit is one line)
        try:
            while True:
                # Idle timeout per block, and an overall deadline for the whole transfer.
                self._reset_timeout(max(0.001, min(self.settings.timeout, deadline - loop.time())))
                block = await reader.read(BLOCK)
                if not block:
                    # End of stream mid-DATA: the session is over, as when aiosmtpd's
                    # eof_received cancels it (no reply can reach the client any more).
                    raise asyncio.CancelledError()
                payload, rest = decoder.feed(block)
                if too_big:
                    drained += len(block)
                    if drained > DRAIN_FACTOR * self.max_bytes:
                        self.say_goodbye(replies.SIZE_EXCEEDED)
                        raise asyncio.CancelledError()  # the connection is closed: end the session
                elif spool.size + len(payload) > self.max_bytes:
                    too_big = True
                    spool.discard()
                elif not spool.full:
                    await spool.add(payload)
                if rest is not None:
                    if rest:
                        reader._buffer[:0] = rest  # the client's next commands
                    break
        finally:
            reader._limit = self.line_length_limit
        if not too_big and not spool.full:
            await spool.finish()
        return not too_big

    async def _store(self, spool: _Spool, envelope: MailEnvelope) -> str:
        # The intake makes the raw bytes durable (fsync + rename) while it parses them.
        raw = RawMessage(spool.writer.key, spool.size, spool.whole, pending=spool.writer)
        reply = await self.handler.deliver(envelope, raw)
        self._journal(envelope, reply, spool.size)
        return reply

    def _journal(self, envelope: MailEnvelope, reply: str, size: int) -> None:
        if self.session is not None:
            self.handler.journal(self.session, envelope, reply, size)
