"""`Idempotency-Key` on the POSTs that create (declared `idempotent`): a retry gets the first
answer and creates nothing.

The same key from the same user within 24 hours, with the same request (method, path, query and
body: `api.request_digest`), is answered with the first answer's status and body, marked
`Idempotent-Replayed: true`. The same key with another request is a 422. A request arriving
while another with its key is still running is a 409 at once (it does not wait: the first may
be a long upload); the client retries after a moment and then gets the first answer. Only
successful answers are kept: after an error the key is free again, so the client may retry
with it. Keys are kept in the database (`domain.idempotency`), shared by every process.

An upload is hashed while the intake streams it, so the first request costs no extra read; a
retry's body is read (not stored) to be compared. A process that dies between committing the
records and keeping the answer leaves the key held until its lease runs out; a retry after
that creates the records again (the window is one database write).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from postroom.api.bodies import whole_body
from postroom.api.keys import ACTOR, runtime
from postroom.api.request_digest import DIGEST, RequestDigest
from postroom.api.routing import Endpoint, Files, endpoint_of
from postroom.api.upload_body import drain
from postroom.domain import idempotency
from postroom.errors import Unprocessable
from postroom.runtime import Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
# A retry's body is only hashed: bound it by the largest body any endpoint takes, plus framing.
_FRAMING_BYTES = 1024 * 1024

log = logging.getLogger("postroom.http")


def _replay(answered: idempotency.Answered) -> web.Response:
    return web.Response(
        status=answered.status,
        text=answered.body,
        content_type="application/json",
        headers={REPLAYED: "true"},
    )


async def _digest_body(request: web.Request, endpoint: Endpoint, rt: Runtime) -> str:
    """The digest of a request whose handler will not run (a retry)."""
    digest = request[DIGEST]
    if isinstance(endpoint.body, Files):
        settings = rt.settings
        largest = max(settings.limits.max_upload_bytes, settings.smtp.max_message_bytes)
        await drain(request, largest + _FRAMING_BYTES, settings.limits.upload_idle_timeout_s)
    elif endpoint.body is not None:
        digest.data(await whole_body(request))
    return digest.hexdigest()


async def _hold(rt: Runtime, user_id: int, key: str) -> None:
    """Renew the key's lease while its request runs."""
    while True:
        await asyncio.sleep(idempotency.LEASE.total_seconds() / 3)
        try:
            await idempotency.renew(rt.db, user_id, key)
        except Exception:  # the next renewal may succeed; the lease is long enough for two
            log.warning("could not renew an idempotency key's lease", exc_info=True)


def _kept_body(response: web.StreamResponse) -> str | None:
    """The text of a successful JSON answer (None: not one that can be replayed)."""
    if not 200 <= response.status < 300 or not isinstance(response, web.Response):
        return None
    body = response.body
    if not isinstance(body, bytes) or response.content_type != "application/json":
        return None
    return body.decode("utf-8")


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    raw_key = request.headers.get(HEADER)
    actor = request.get(ACTOR)
    endpoint = endpoint_of(request.match_info.handler)
    if raw_key is None or actor is None or endpoint is None or not endpoint.idempotent:
        return await handler(request)
    key = idempotency.check_key(raw_key)
    rt = runtime(request)
    request[DIGEST] = digest = RequestDigest.of_request(request)
    answered = await idempotency.claim(rt.db, actor.user_id, key)
    if answered is not None:
        if await _digest_body(request, endpoint, rt) != answered.request_sha256:
            raise Unprocessable(
                f"{HEADER}: this key was used for another request in the last 24 hours; "
                "use a new key for a new request."
            )
        return _replay(answered)
    holding = asyncio.create_task(_hold(rt, actor.user_id, key))
    try:
        try:
            if not isinstance(endpoint.body, Files) and endpoint.body is not None:
                digest.data(await whole_body(request))
            response = await handler(request)
        except BaseException:
            await _release(rt, actor.user_id, key)
            raise
        kept = _kept_body(response)
        if kept is None:
            await _release(rt, actor.user_id, key)
            return response
        try:
            await idempotency.remember(
                rt.db, actor.user_id, key, digest.hexdigest(), response.status, kept
            )
        except Exception:  # the records exist: answer, the key stays held until its lease ends
            log.exception("could not keep the answer of an idempotency key")
        return response
    finally:
        holding.cancel()


async def _release(rt: Runtime, user_id: int, key: str) -> None:
    try:
        await asyncio.shield(idempotency.release(rt.db, user_id, key))
    except Exception:  # its lease runs out anyway
        log.warning("could not release an idempotency key", exc_info=True)
