"""The HTTP side of `postroom upload`: API calls with retries, one file upload, one annotation followed.

Requests answered 429 or 5xx, and broken connections, are retried with exponential backoff and
jitter; a `Retry-After` in seconds is honoured as given. A multipart body is rebuilt from a fresh
file handle for every attempt, since aiohttp streams it from the file.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

RETRYABLE = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF = 30.0
# Annotation states that mean the import went through (automation may move it past to_review).
IMPORTED = frozenset({"to_review", "reviewing", "confirmed", "exporting", "exported", "postponed"})


class UsageError(Exception):
    """A bad command line or a refused login (exit code 2)."""


@dataclass
class Outcome:
    path: Path
    size: int
    result: str = "pending"  # uploaded | skipped | failed | <annotation status>
    detail: str = ""
    annotation_url: str | None = None
    ok: bool = False

    @property
    def annotation_id(self) -> str:
        return self.annotation_url.rstrip("/").rsplit("/", 1)[-1] if self.annotation_url else "-"


def size_text(n: int) -> str:
    """`812 B`, `3.4 KiB`, `40.0 MiB`."""
    size, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            break
        size /= 1024
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"


def _retry_delay(attempt: int, response: aiohttp.ClientResponse | None) -> float:
    header = response.headers.get("Retry-After") if response is not None else None
    if header:
        try:
            return min(float(header), 300.0)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
    return float(min(MAX_BACKOFF, 0.5 * 2**attempt)) * (0.5 + random.random())


@dataclass
class Client:
    """The API calls the uploader makes, with retries on 429/5xx and connection errors."""

    session: aiohttp.ClientSession
    base: str
    retries: int
    headers: dict[str, str] = field(default_factory=dict)

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(status, JSON body or text) of the first non-retryable answer, or of the last attempt."""
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
                    return 0, f"connection failed: {exc or type(exc).__name__}"
                delay = _retry_delay(attempt, None)
            finally:
                _close_files(kwargs.get("data"))
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def login(self, username: str, password: str) -> None:
        status, body = await self.request(
            "POST", "/api/v1/auth/login", json={"username": username, "password": password}
        )
        if status != 200:
            raise UsageError(f"login failed ({status}): {_detail(body)}")
        self.headers = {"Authorization": f"Bearer {body['key']}"}


async def _body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def _detail(body: Any) -> str:
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:200]


def _close_files(data: Any) -> None:
    for handle in getattr(data, "postroom_files", ()):
        handle.close()


def _form(path: Path, metadata: str | None, values: str | None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    # A fresh handle per attempt: aiohttp streams it in chunks and a retry must start over.
    handle = path.open("rb")
    form.add_field("content", handle, filename=path.name)
    if metadata is not None:
        form.add_field("metadata", metadata, content_type="application/json")
    if values is not None:
        form.add_field("values", values, content_type="application/json")
    form.postroom_files = (handle,)  # type: ignore[attr-defined]
    return form


async def upload_file(
    client: Client,
    path: Path,
    size: int,
    *,
    queue: int,
    max_bytes: int,
    metadata: str | None = None,
    values: str | None = None,
) -> Outcome:
    """Upload one file (or skip it when over `max_bytes`); the outcome says which and why."""
    outcome = Outcome(path, size)
    if size > max_bytes:
        outcome.result = "skipped"
        outcome.detail = f"{size_text(size)} is over the {size_text(max_bytes)} limit"
        return outcome
    status, body = await client.request(
        "POST",
        f"/api/v1/queues/{queue}/upload",
        make_data=lambda: _form(path, metadata, values),
    )
    if status == 201 and isinstance(body, dict) and body.get("results"):
        outcome.result, outcome.ok = "uploaded", True
        outcome.annotation_url = body["results"][0]["annotation"]
    elif status == 413:
        outcome.result, outcome.detail = "skipped", f"server limit: {_detail(body)}"
    else:
        outcome.result = "failed"
        outcome.detail = f"HTTP {status}: {_detail(body)}" if status else _detail(body)
    return outcome


async def follow_annotation(client: Client, outcome: Outcome, deadline: float) -> None:
    """Poll the annotation until it leaves `importing` (or the deadline passes)."""
    assert outcome.annotation_url is not None
    path = "/api/v1/annotations/" + outcome.annotation_id
    delay = 0.2
    while True:
        status, body = await client.request("GET", path)
        if status != 200 or not isinstance(body, dict):
            outcome.result, outcome.ok = "failed", False
            outcome.detail = f"HTTP {status} reading the annotation: {_detail(body)}"
            return
        state = body.get("status", "?")
        if state != "importing":
            outcome.result, outcome.ok = state, state in IMPORTED
            messages = body.get("messages") or []
            if messages and not outcome.ok:
                outcome.detail = str(messages[0].get("content", ""))
            return
        if time.monotonic() >= deadline:
            outcome.result, outcome.ok = "importing", False
            outcome.detail = "still importing when --wait-timeout ran out"
            return
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 2.0)
