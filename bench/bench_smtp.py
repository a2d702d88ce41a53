"""SMTP intake: messages/s and p99 acknowledgement latency, Postroom beside a bare aiosmtpd handler.

For each message size (10 KB, 1 MB, 30 MB by default) and each number of concurrent senders (1
and 20) the script sends MIME messages with one attachment (base64, unique bytes per message)
and measures, per message, the time from MAIL FROM to the 250 after DATA. Each sender keeps one
SMTP connection and sends its messages one after the other, as an MTA does.

Two servers run as subprocesses, one at a time, each on its own fresh data directory:
- `postroom`: the real service (SQLite by default; `--database-url` for PostgreSQL) with the
  pipeline workers off (`--workers`), so the figure is intake only: spool + fsync the raw
  message, parse, store the attachment, commit email/upload/document/annotation/job.
- `bare`: stock aiosmtpd (`SMTP` on `loop.create_server`) whose handler only writes the message
  to a new file and fsyncs it: the floor of "acknowledged means on disk".
Peak RSS is the largest resident set of the server process sampled every 50 ms during a cell.

Runs are short by default (a few seconds per cell; 30 MB cells send one message per sender):

    .venv/bin/python bench/bench_smtp.py
    .venv/bin/python bench/bench_smtp.py --sizes 10k --concurrency 1,20 --seconds 10
    .venv/bin/python bench/bench_smtp.py --database-url postgresql+asyncpg://u:p@127.0.0.1/db

PostgreSQL: the script drops and recreates the `public` schema of that database.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib

SIZES = {"10k": 10 * 1024, "1m": 1024 * 1024, "30m": 30 * 1024 * 1024}
SENDER = "bench@example.com"


# --- servers (run in a subprocess: `bench_smtp.py serve <kind> <data_dir>`) -----------------


async def _serve_postroom(data_dir: Path, workers: int, database_url: str) -> None:
    from postroom.app import Service
    from postroom.config import load_settings

    environ = {
        "POSTROOM_STORAGE_DATA_DIR": str(data_dir),
        "POSTROOM_HTTP_PORT": "0",
        "POSTROOM_SMTP_PORT": "0",
        "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": "bench-password-123",
        "POSTROOM_PIPELINE_WORKERS": str(workers),
        "POSTROOM_LIMITS_SMTP_CONNECTIONS_PER_MINUTE": "1000000",
        "POSTROOM_LIMITS_SMTP_MESSAGES_PER_MINUTE": "1000000",
        "POSTROOM_LOG_LEVEL": "WARNING",
    }
    if database_url:
        from common import reset_postgres  # here: the bare server stays free of SQLAlchemy

        await reset_postgres(database_url)
        environ["POSTROOM_DATABASE_URL"] = database_url
    service = Service(load_settings(None, environ))
    running = await service.start()
    assert running.first_start is not None
    print(json.dumps({"port": running.smtp_port, "rcpt": running.first_start.inbox_email}))
    sys.stdout.flush()
    await asyncio.Event().wait()


class _FsyncHandler:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.count = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.count += 1
        path = self.data_dir / f"{os.getpid()}-{self.count}.eml"
        content = envelope.original_content  # type: ignore[attr-defined]
        await asyncio.to_thread(_write_fsynced, path, content)
        return "250 OK"


def _write_fsynced(path: Path, content: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


async def _serve_bare(data_dir: Path) -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    handler = _FsyncHandler(data_dir)
    server = await loop.create_server(
        lambda: SMTP(handler, data_size_limit=64 << 20, hostname="bare", loop=loop),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "rcpt": "inbox@bare.test"}))
    sys.stdout.flush()
    await asyncio.Event().wait()


# --- client -----------------------------------------------------------------------------------


@dataclass
class Cell:
    target: str
    size: str
    senders: int
    messages: int
    seconds: float
    latencies: list[float]
    peak_rss_mib: float
    cpu_ms_per_message: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


class Payload:
    """One message of about `size` bytes; `next()` changes the first attachment bytes and the
    Message-ID so every message and every attachment is unique (no dedupe shortcut)."""

    _bodies: dict[int, bytes] = {}  # one base64 body per size, shared by every sender

    def __init__(self, rcpt: str, size: int) -> None:
        if size not in self._bodies:
            raw = b"%PDF-1.4\n" + os.urandom(max(size * 3 // 4 - 600, 64))
            self._bodies[size] = base64.encodebytes(raw)
        self.encoded = self._bodies[size]
        self.rcpt = rcpt
        self.counter = 0

    def next(self) -> bytes:
        self.counter += 1
        unique = base64.b64encode(b"%PDF-1." + os.urandom(8))  # 15 bytes → 20 characters
        head = (
            f"From: Bench <{SENDER}>\r\nTo: {self.rcpt}\r\nSubject: bench {self.counter}\r\n"
            f"Message-ID: <{os.urandom(12).hex()}@bench.test>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="BENCH"\r\n\r\n'
            "--BENCH\r\nContent-Type: text/plain\r\n\r\nbench message\r\n"
            "--BENCH\r\nContent-Type: application/pdf\r\n"
            'Content-Disposition: attachment; filename="bench.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        body = unique + self.encoded[20:]
        return head + body.replace(b"\n", b"\r\n") + b"\r\n--BENCH--\r\n"


async def _sender(
    port: int, payload: Payload, stop_at: float, quota: int, latencies: list[float]
) -> None:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=300)
    await client.connect()
    try:
        sent = 0
        while sent < quota and time.monotonic() < stop_at:
            message = payload.next()
            started = time.monotonic()
            await client.sendmail(SENDER, [payload.rcpt], message)
            latencies.append(time.monotonic() - started)
            sent += 1
    finally:
        await client.quit()


async def _sample_rss(pid: int, peak: list[float], done: asyncio.Event) -> None:
    status = Path(f"/proc/{pid}/status")
    while not done.is_set():
        for line in status.read_text().splitlines():  # noqa: ASYNC240 (procfs: no disk I/O)
            if line.startswith("VmRSS:"):
                peak[0] = max(peak[0], int(line.split()[1]) / 1024)
        await asyncio.sleep(0.05)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_cell(
    target: str, pid: int, port: int, rcpt: str, size: str, senders: int, seconds: float
) -> Cell:
    payloads = [Payload(rcpt, SIZES[size]) for _ in range(senders)]
    big = SIZES[size] >= 16 << 20
    quota = 1 if big else 1_000_000  # big cells: one message per sender, whatever it takes
    latencies: list[float] = []
    peak = [0.0]
    done = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(pid, peak, done))
    cpu_before = _cpu_seconds(pid)
    started = time.monotonic()
    stop_at = float("inf") if big else started + seconds
    await asyncio.gather(*(_sender(port, p, stop_at, quota, latencies) for p in payloads))
    elapsed = time.monotonic() - started
    cpu = _cpu_seconds(pid) - cpu_before
    done.set()
    await sampler
    per_message = 1000 * cpu / max(len(latencies), 1)
    return Cell(target, size, senders, len(latencies), elapsed, latencies, peak[0], per_message)


def _start_server(
    kind: str, data_dir: Path, args: argparse.Namespace
) -> tuple[subprocess.Popen[str], dict[str, object]]:
    command = [sys.executable, __file__, "serve", kind, str(data_dir)]
    command += ["--workers", str(args.workers), "--database-url", args.database_url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise SystemExit(f"{kind} server did not start")
    return process, json.loads(line)


async def bench(args: argparse.Namespace) -> list[Cell]:
    cells: list[Cell] = []
    for target in args.targets.split(","):
        for size in args.sizes.split(","):
            for senders in (int(c) for c in args.concurrency.split(",")):
                with tempfile.TemporaryDirectory(prefix="bench-smtp-") as tmp:
                    process, info = _start_server(target, Path(tmp), args)
                    try:
                        cell = await run_cell(
                            target,
                            process.pid,
                            int(info["port"]),  # type: ignore[call-overload]
                            str(info["rcpt"]),
                            size,
                            senders,
                            args.seconds,
                        )
                    finally:
                        process.terminate()
                        process.wait(30)
                print(
                    f"{cell.target:9} {cell.size:>4} c{cell.senders:<3} {cell.messages:6d} msgs "
                    f"{cell.rate:8.1f} msg/s  p99 {cell.p99_ms:8.1f} ms  peak RSS "
                    f"{cell.peak_rss_mib:6.0f} MiB  server CPU {cell.cpu_ms_per_message:6.1f} ms/msg",
                    flush=True,
                )
                cells.append(cell)
    return cells


def table(cells: list[Cell]) -> str:
    lines = [
        "| size | senders | postroom msg/s | p99 ms | peak RSS MiB | CPU ms/msg "
        "| bare msg/s | p99 ms | peak RSS MiB | CPU ms/msg |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    keyed = {(c.target, c.size, c.senders): c for c in cells}
    for size in dict.fromkeys(c.size for c in cells):
        for senders in dict.fromkeys(c.senders for c in cells):
            row = [size, str(senders)]
            for target in ("postroom", "bare"):
                cell = keyed.get((target, size, senders))
                row += (
                    [
                        f"{cell.rate:.1f}",
                        f"{cell.p99_ms:.1f}",
                        f"{cell.peak_rss_mib:.0f}",
                        f"{cell.cpu_ms_per_message:.1f}",
                    ]
                    if cell
                    else ["-"] * 4
                )
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10k,1m,30m", help=f"comma list of {', '.join(SIZES)}")
    parser.add_argument("--concurrency", default="1,20", help="comma list of sender counts")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each cell")
    parser.add_argument("--targets", default="postroom,bare")
    parser.add_argument("--workers", type=int, default=0, help="Postroom pipeline workers")
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default SQLite)")
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve = argparse.ArgumentParser()
        serve.add_argument("serve")
        serve.add_argument("kind")
        serve.add_argument("data_dir", type=Path)
        serve.add_argument("--workers", type=int, default=0)
        serve.add_argument("--database-url", default="")
        opts = serve.parse_args()
        if opts.kind == "postroom":
            asyncio.run(_serve_postroom(opts.data_dir, opts.workers, opts.database_url))
        else:
            asyncio.run(_serve_bare(opts.data_dir))
        return
    args = parser.parse_args()
    cells = asyncio.run(bench(args))
    print()
    print(table(cells))


if __name__ == "__main__":
    main()
