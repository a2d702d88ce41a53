"""Helpers for the tests of `postroom upload`: the command as a real subprocess, sample files,
counts read back from the server, and a counting HTTP relay in front of the server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api


async def run_upload(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m postroom upload ...` without blocking the loop the server runs on."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "postroom",
        "upload",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def run_upload_on_pty(*args: str) -> tuple[int, str, str]:
    """Like `run_upload`, with stderr on a pseudo-terminal: (exit code, stdout, what the
    terminal showed)."""
    controller, terminal = os.openpty()
    shown = bytearray()
    loop = asyncio.get_running_loop()

    def drain() -> None:
        try:
            shown.extend(os.read(controller, 65536))
        except OSError:  # the other side closed
            loop.remove_reader(controller)

    loop.add_reader(controller, drain)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "postroom", "upload", *args,
            stdout=asyncio.subprocess.PIPE, stderr=terminal, stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
        )  # fmt: skip
        os.close(terminal)
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=300)
        await asyncio.sleep(0.2)  # the last bytes on the terminal
    finally:
        loop.remove_reader(controller)
        os.close(controller)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), shown.decode(errors="replace")


def make_invoices(folder: Path, count: int) -> list[Path]:
    """Small text invoices spread over nested folders, plus a hidden file that must be skipped."""
    paths = []
    for i in range(count):
        sub = folder / f"batch-{i % 3}" / ("deep" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"invoice-{i:03d}.txt"
        path.write_text(f"Invoice {i}\nTotal: {i * 10} EUR\n")
        paths.append(path)
    (folder / ".DS_Store").write_bytes(b"\x00\x01hidden")
    return paths


def credentials(server: Any) -> list[str]:
    return ["--url", server.api_url, "--user", ADMIN_USER, "--password", ADMIN_PASSWORD]


async def annotation_count(admin: Api) -> int:
    _, body = await admin.get("/annotations?queue=1&page_size=1", expect=200)
    return int(body["pagination"]["total"])


async def upload_count(admin: Api) -> int:
    """Upload records of queue 1: one per file the uploader got in."""
    _, body = await admin.get("/uploads?queue=1&page_size=1", expect=200)
    return int(body["pagination"]["total"])


async def requests_counted(http: aiohttp.ClientSession, base: str) -> dict[tuple[str, str], float]:
    """(method, route template) → requests answered so far, from the server's /metrics."""
    async with http.get(base + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "postroom_http_requests_total":
                key = (sample.labels["method"], sample.labels["route"])
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


class CountingRelay:
    """A plain HTTP relay in front of the server that counts upload requests in flight.

    Each upload is held until `hold` are in flight (or five seconds pass), so that a client
    sending several at once is seen doing so without depending on timing."""

    def __init__(self, target: str, hold: int) -> None:
        self.target, self.hold = target, hold
        self.in_flight = self.most = 0
        self.changed = asyncio.Condition()
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self, http: aiohttp.ClientSession) -> CountingRelay:
        self.http = http
        app = web.Application(client_max_size=1 << 26)
        app.router.add_route("*", "/{tail:.*}", self.relay)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def relay(self, request: web.Request) -> web.Response:
        body = await request.read()
        uploading = request.method == "POST" and request.path.endswith("/uploads")
        if uploading:
            async with self.changed:
                self.in_flight += 1
                self.most = max(self.most, self.in_flight)
                self.changed.notify_all()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.changed.wait_for(lambda: self.in_flight >= self.hold), 5.0
                    )
        try:
            dropped = ("host", "content-length", "transfer-encoding")
            headers = {k: v for k, v in request.headers.items() if k.lower() not in dropped}
            async with self.http.request(
                request.method, self.target + request.path_qs, data=body, headers=headers
            ) as answer:
                payload = await answer.read()
                return web.Response(
                    status=answer.status,
                    body=payload,
                    content_type=answer.content_type,
                )
        finally:
            if uploading:
                async with self.changed:
                    self.in_flight -= 1
