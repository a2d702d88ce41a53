"""`postroom upload`: send files to a queue through the public REST API, like any other client.

Each file is one `POST /api/v1/queues/{id}/upload` (multipart `content`, plus `metadata`/`values`),
streamed from disk. Folders are walked recursively (hidden files skipped). Files over the size
limit are skipped with a line saying so, without being sent. 429 and 5xx answers and broken
connections are retried with exponential backoff, honouring `Retry-After`. Progress (files and
bytes) goes to stderr; with `--wait` each annotation is followed until it leaves `importing`, and
a summary table goes to stdout. The exit code is 1 if any file was not uploaded or failed import.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from postroom.client.api_calls import (
    Client,
    Outcome,
    UsageError,
    follow_annotation,
    size_text,
    upload_file,
)

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_MAX_BYTES = 40 * 1024 * 1024


@dataclass
class Options:
    paths: list[str]
    queue: int
    url: str = DEFAULT_URL
    user: str | None = None
    password: str | None = None
    token: str | None = None
    metadata: str | None = None
    values: str | None = None
    concurrency: int = 4
    wait: bool = False
    wait_timeout: float = 600.0
    max_bytes: int = DEFAULT_MAX_BYTES
    retries: int = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="files or folders")
    parser.add_argument("--queue", type=int, required=True, help="id of the target queue")
    parser.add_argument(
        "--url",
        default=os.environ.get("POSTROOM_URL", DEFAULT_URL),
        help="base URL as printed by `postroom serve` (default: $POSTROOM_URL or %(default)s)",
    )
    parser.add_argument("--user", help="username (the password is prompted for when omitted)")
    parser.add_argument("--password", help="password (or $POSTROOM_PASSWORD)")
    parser.add_argument("--token", help="API token (or $POSTROOM_TOKEN) instead of --user")
    parser.add_argument("--metadata", help="JSON object stored as each annotation's metadata")
    parser.add_argument("--values", help="JSON object of initial values (upload:<key> fields)")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel uploads (default 4)")
    parser.add_argument(
        "--wait", action="store_true", help="follow each annotation to to_review/failed_import"
    )
    parser.add_argument(
        "--wait-timeout", type=float, default=600.0, help="seconds --wait may take (default 600)"
    )
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        help="skip files larger than this (default: the server's default, 40 MiB)",
    )
    parser.add_argument(
        "--retries", type=int, default=6, help="attempts per request on 429/5xx (default 6)"
    )


def options_from_args(args: argparse.Namespace) -> Options:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    for name in ("metadata", "values"):
        raw = getattr(args, name)
        if raw is not None:
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise UsageError(f"--{name} is not valid JSON: {exc}") from None
            if not isinstance(parsed, dict):
                raise UsageError(f"--{name} must be a JSON object")
    token = args.token or (None if args.user else os.environ.get("POSTROOM_TOKEN"))
    password = args.password or os.environ.get("POSTROOM_PASSWORD")
    if args.user and args.token:
        raise UsageError("give either --user/--password or --token, not both")
    if not token and not args.user:
        raise UsageError("credentials needed: --user U [--password P] or --token T")
    if args.user and not password:
        if not sys.stdin.isatty():
            raise UsageError("--password (or $POSTROOM_PASSWORD) is needed without a terminal")
        password = getpass.getpass(f"Password for {args.user}: ")
    return Options(
        paths=list(args.paths),
        queue=args.queue,
        url=_api_base(args.url),
        user=args.user,
        password=password,
        token=token,
        metadata=args.metadata,
        values=args.values,
        concurrency=args.concurrency,
        wait=args.wait,
        wait_timeout=args.wait_timeout,
        max_bytes=args.max_bytes,
        retries=max(1, args.retries),
    )


def _api_base(url: str) -> str:
    """`http://h:8000`, `http://h:8000/` and `http://h:8000/api/v1` all mean the same server."""
    url = url.rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url must start with http:// or https://, got {url!r}")
    return url


def collect_files(paths: Sequence[str]) -> list[Path]:
    """The files named, and every non-hidden file under the folders named, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
        else:
            raise UsageError(f"no such file or folder: {raw}")
    return found


class Progress:
    """One status line on stderr: redrawn in place on a terminal, every few seconds otherwise."""

    def __init__(self, total_files: int, total_bytes: int, stream: TextIO = sys.stderr) -> None:
        self.total_files, self.total_bytes = total_files, total_bytes
        self.files = self.bytes = self.failed = 0
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0

    def advance(self, outcome: Outcome) -> None:
        self.files += 1
        self.bytes += outcome.size if outcome.ok else 0
        self.failed += 0 if outcome.ok else 1
        if not outcome.ok:
            self.say(f"{outcome.result}: {outcome.path} ({outcome.detail})")
        self.draw(final=self.files == self.total_files)

    def say(self, line: str) -> None:
        """A line of its own (a skipped or failed file); the status line follows on the next draw."""
        self.stream.write(("\r\033[K" if self.tty else "") + line + "\n")
        self.stream.flush()

    def draw(self, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        width = 30
        done = int(width * self.files / self.total_files) if self.total_files else width
        bar = "#" * done + "-" * (width - done)
        line = (
            f"[{bar}] {self.files}/{self.total_files} files  "
            f"{size_text(self.bytes)} of {size_text(self.total_bytes)}  {self.failed} failed"
        )
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r\033[K" if self.tty else "") + line + end)
        self.stream.flush()


def print_summary(outcomes: list[Outcome], stream: TextIO = sys.stdout) -> None:
    rows = [("FILE", "SIZE", "RESULT", "ANNOTATION", "DETAIL")]
    rows += [
        (str(o.path), str(o.size), o.result, o.annotation_id, o.detail.replace("\n", " ")[:100])
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        stream.write("  ".join(cells).rstrip() + "\n")
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result] = counts.get(o.result, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    stream.write(f"{len(outcomes)} files: {summary}\n")


async def run_upload(options: Options) -> int:
    files = collect_files(options.paths)
    if not files:
        raise UsageError("no files to upload")
    sizes = [f.stat().st_size for f in files]
    progress = Progress(len(files), sum(s for s in sizes if s <= options.max_bytes))
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    connector = aiohttp.TCPConnector(limit=options.concurrency * 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        client = Client(session, options.url, options.retries)
        if options.token:
            client.headers = {"Authorization": f"Bearer {options.token}"}
        else:
            assert options.user is not None and options.password is not None
            await client.login(options.user, options.password)
        gate = asyncio.Semaphore(options.concurrency)

        async def one(path: Path, size: int) -> Outcome:
            async with gate:
                outcome = await upload_file(
                    client,
                    path,
                    size,
                    queue=options.queue,
                    max_bytes=options.max_bytes,
                    metadata=options.metadata,
                    values=options.values,
                )
            progress.advance(outcome)
            return outcome

        outcomes = list(
            await asyncio.gather(*(one(f, s) for f, s in zip(files, sizes, strict=True)))
        )
        if options.wait:
            progress.say("waiting for the pipeline ...")
            deadline = time.monotonic() + options.wait_timeout

            async def follow(outcome: Outcome) -> None:
                async with gate:
                    await follow_annotation(client, outcome, deadline)

            await asyncio.gather(*(follow(o) for o in outcomes if o.ok))
    print_summary(outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


def main(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(run_upload(options_from_args(args)))
    except UsageError as error:
        print(f"postroom upload: {error}", file=sys.stderr)
        return 2
