"""The HTTP side of `postroom upload`: API calls with retries, the queue check, one file upload,
and annotations read back in batches.

Requests answered 429 or 5xx, and broken connections, are retried with exponential backoff and
jitter; a `Retry-After` in seconds is honoured as given. A multipart body is rebuilt from a fresh
file handle for every attempt, since aiohttp streams it from the file.

Answers that concern the whole run (bad credentials, an unknown or inactive queue, a server that
cannot be reached) raise `Stop` at the first one, instead of being repeated for every file.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp

from postroom.client.outcomes import ALREADY, UPLOADED, Outcome, Stop, refused, unreachable

RETRYABLE = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF = 30.0
LIST_BATCH = 100  # the API's largest page_size
_DOCUMENT_URL = re.compile(r"(https?://\S+/documents/(\d+))")


def _retry_delay(attempt: int, response: aiohttp.ClientResponse | None) -> float:
    header = response.headers.get("Retry-After") if response is not None else None
    if header:
        try:
            return min(float(header), 300.0)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    return float(min(MAX_BACKOFF, 0.5 * 2**attempt)) * (0.5 + random.random())


def detail_of(body: Any) -> str:
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:200]


@dataclass
class Client:
    """The API calls the uploader makes, with retries on 429/5xx and connection errors."""

    session: aiohttp.ClientSession
    base: str
    retries: int
    headers: dict[str, str] = field(default_factory=dict)

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, JSON body or text) of the first non-retryable answer, or of the last attempt;
        status 0 when the connection itself failed every time."""
        make_data = kwargs.pop("make_data", None)
        for attempt in range(self.retries):
            if make_data is not None:
                kwargs["data"] = make_data()
            try:
                async with self.session.request(
                    method, self.base + path, headers=self.headers, **kwargs
                ) as response:
                    body = await _body(response)
                    if response.status not in RETRYABLE or attempt == self.retries - 1:
                        return response.status, body
                    delay = _retry_delay(attempt, response)
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                if attempt == self.retries - 1:
                    return 0, f"{exc or type(exc).__name__}"
                delay = _retry_delay(attempt, None)
            finally:
                _close_files(kwargs.get("data"))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def unreachable(self, body: Any) -> Stop:
        return unreachable(f"cannot reach {self.base}: {detail_of(body)}")

    async def login(self, username: str, password: str) -> None:
        status, body = await self.request(
            "POST", "/api/v1/auth/login", json={"username": username, "password": password}
        )
        if status == 0:
            raise self.unreachable(body)
        if status != 200 or not isinstance(body, dict) or "key" not in body:
            raise refused(f"login refused for user {username!r} (HTTP {status}): {detail_of(body)}")
        self.headers = {"Authorization": f"Bearer {body['key']}"}

    def stop_unless_answered(self, status: int, body: Any) -> None:
        """No answer at all (unreachable) or 401 (credentials refused) ends the whole run."""
        if status == 0:
            raise self.unreachable(body)
        if status == 401:
            raise refused(f"credentials refused (HTTP 401): {detail_of(body)}")

    async def check_queue(self, queue: int) -> dict[str, Any]:
        """The queue, once: unknown, invisible, inactive or unauthenticated stops the run here."""
        status, body = await self.request("GET", f"/api/v1/queues/{queue}")
        self.stop_unless_answered(status, body)
        if status in (403, 404):
            raise refused(f"queue {queue} not found, or not visible to this user (HTTP {status})")
        if status != 200 or not isinstance(body, dict):
            raise unreachable(f"{self.base} answered HTTP {status}: {detail_of(body)}")
        state = body.get("status", "active")
        if state != "active":
            raise refused(f"queue {queue} does not accept documents while its status is {state}")
        return body

    async def identical_in_queue(self, refusal: str, queue: int) -> tuple[str, str] | None:
        """(annotation, document) URLs when the document a `reject_identical` refusal names
        has an annotation in `queue`; None when it belongs elsewhere (or cannot be told)."""
        found = _DOCUMENT_URL.search(refusal)
        if found is None:
            return None
        query = f"?document={found.group(2)}&queue={queue}&page_size=1"
        status, body = await self.request("GET", "/api/v1/annotations" + query)
        if status == 0:
            raise self.unreachable(body)
        rows = body.get("results") if status == 200 and isinstance(body, dict) else None
        if not rows or not isinstance(rows[0], dict):
            return None
        return str(rows[0].get("url")), found.group(1)

    async def annotation_states(
        self, ids: Iterable[str]
    ) -> tuple[list[str], dict[str, dict[str, Any]]]:
        """The ids a list call answered for, and id → annotation (with its status and messages)
        for those it found: one `GET /annotations?id=…` per 100 ids. A failed call leaves its
        ids out of both, to be asked again at the next poll."""
        wanted = list(ids)
        answered: list[str] = []
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), LIST_BATCH):
            chunk = wanted[start : start + LIST_BATCH]
            query = f"?id={','.join(chunk)}&page_size={LIST_BATCH}"
            status, body = await self.request("GET", "/api/v1/annotations" + query)
            self.stop_unless_answered(status, body)
            if status != 200 or not isinstance(body, dict):
                continue
            answered += chunk
            for row in body.get("results") or []:
                if isinstance(row, dict):
                    found[str(row.get("id"))] = row
        return answered, found


async def _body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _close_files(data: Any) -> None:
    for handle in getattr(data, "postroom_files", ()):
        handle.close()


class CountingReader(io.BufferedReader):
    """A file read for sending that reports each chunk's size (called from aiohttp's reader
    thread, so `on_read` must be thread-safe)."""

    def __init__(self, path: Path, on_read: Callable[[int], None]) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self.on_read = on_read

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if chunk:
            self.on_read(len(chunk))
        return chunk


def _form(
    path: Path, metadata: str | None, values: str | None, on_read: Callable[[int], None]
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    # A fresh handle per attempt: aiohttp streams it in chunks and a retry must start over.
    handle = CountingReader(path, on_read)
    form.add_field("content", handle, filename=path.name)
    if metadata is not None:
        form.add_field("metadata", metadata, content_type="application/json")
    if values is not None:
        form.add_field("values", values, content_type="application/json")
    form.postroom_files = (handle,)  # type: ignore[attr-defined]
    return form


@dataclass(frozen=True)
class UploadTarget:
    """Where and how every file goes."""

    queue: int
    metadata: str | None = None
    values: str | None = None
    reject_identical: bool = False

    @property
    def path(self) -> str:
        flag = "&reject_identical=true" if self.reject_identical else ""
        return f"/api/v1/uploads?queue={self.queue}{flag}"


async def upload_file(
    client: Client,
    outcome: Outcome,
    target: UploadTarget,
    on_bytes: Callable[[int], None],
) -> None:
    """Send one file to `POST /uploads`; the outcome says what came of it. Answers that concern
    every file (401, 403, 404, an inactive queue, no connection) raise `Stop`."""
    sent = 0

    def counted(n: int) -> None:
        nonlocal sent
        sent += n
        on_bytes(n)

    def make_data() -> aiohttp.FormData:
        nonlocal sent
        if sent:
            on_bytes(-sent)  # a retry starts the file over
            sent = 0
        return _form(outcome.path, target.metadata, target.values, counted)

    status, body = await client.request("POST", target.path, make_data=make_data)
    if target.reject_identical and _identical(status, body):
        existing = await client.identical_in_queue(detail_of(body), target.queue)
        if existing is not None:
            outcome.annotation_url, outcome.document_url = existing
        else:  # the same bytes went to another queue: this one still needs them
            target = replace(target, reject_identical=False)
            status, body = await client.request("POST", target.path, make_data=make_data)
    try:
        _judge(client, outcome, target, status, body)
    finally:
        if not outcome.ok and sent:
            on_bytes(-sent)  # the progress counts the bytes of files that got in


def _identical(status: int, body: Any) -> bool:
    """A 409 of `reject_identical`: these bytes under this name are there already (the other
    409, `conflict_status` too, says the queue takes no documents)."""
    return status == 409 and detail_of(body).startswith("reject_identical")


def _judge(client: Client, outcome: Outcome, target: UploadTarget, status: int, body: Any) -> None:
    if status == 202 and isinstance(body, dict) and body.get("results"):
        first = body["results"][0]
        outcome.result, outcome.ok = UPLOADED, True
        outcome.annotation_url, outcome.document_url = first["annotation"], first["document"]
        outcome.task_url = body.get("url")
        return
    detail = detail_of(body)
    client.stop_unless_answered(status, body)
    if status in (403, 404):
        raise refused(f"queue {target.queue}: upload refused (HTTP {status}): {detail}")
    if target.reject_identical and _identical(status, body):
        outcome.result, outcome.ok = ALREADY, True
        outcome.detail = "the server has these bytes under this name already"
    elif status == 409:  # the queue takes no documents (inactive, being deleted)
        raise refused(f"queue {target.queue}: {detail}")
    elif status == 413:
        outcome.result, outcome.detail = "skipped", f"server limit: {detail}"
    else:
        outcome.result = "failed"
        outcome.detail = f"HTTP {status}: {detail}"
