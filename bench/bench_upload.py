"""HTTP upload intake: uploads/s, MB/s, latency p50/p99 and server peak RSS, Postroom beside a bare
aiohttp handler.

For each file size (10 KB, 1 MB, 40 MB by default) and each number of concurrent clients (1 and
20) the script POSTs multipart uploads (one `content` part, unique bytes per request, sent
chunked so the client holds one shared buffer) over real HTTP and times each request until its
answer. Servers run as subprocesses, one at a time, each on a fresh data directory:

- `postroom`: `POST /api/v1/queues/1/upload` with Basic auth — stream to a temp file, hash,
  fsync, rename, sniff, one transaction (upload, document, annotation, job), 201. Pipeline
  workers are off by default (`--workers`), so the figure is intake alone.
- `bare`: an aiohttp handler that streams the multipart part to a new file, fsyncs and closes it,
  and answers 201: the floor of "acknowledged means on disk".

Peak RSS is the largest resident set of the server process sampled every 50 ms during a cell;
CPU ms/up is the server process's user+system CPU time per upload (all its threads).
Cells are bounded (`--seconds`, default 8, and a request cap per size):

    .venv/bin/python bench/bench_upload.py
    .venv/bin/python bench/bench_upload.py --sizes 10k,1m --concurrency 1,20 --seconds 5
    .venv/bin/python bench/bench_upload.py --database-url postgresql+asyncpg://u:p@127.0.0.1/db

PostgreSQL (`--database-url`, or POSTROOM_DATABASE_URL): the script DROPS and recreates the
`public` schema of that database, so give it a database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

SIZES = {"10k": 10_000, "1m": 1_000_000, "40m": 40_000_000}
# Requests per client per cell at most (a 40 MB cell would otherwise run long).
CAP_PER_CLIENT = {"10k": 2000, "1m": 200, "40m": 3}
PASSWORD = "bench-password-123"
CHUNK = 256 * 1024


# --- servers (run in a subprocess: `bench_upload.py serve <kind> <data_dir> <port>`) ---------


def _bare_app(data_dir: Path) -> object:
    from aiohttp import web

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        part = await reader.next()
        assert isinstance(part, aiohttp.BodyPartReader)
        path = data_dir / uuid.uuid4().hex
        f = await asyncio.to_thread(open, path, "wb")
        try:
            while chunk := await part.read_chunk(CHUNK):
                await asyncio.to_thread(f.write, chunk)
            await asyncio.to_thread(_fsync_close, f)
        except BaseException:
            f.close()
            raise
        return web.json_response({"document": path.name}, status=201)

    app = web.Application()
    app.router.add_post("/upload", upload)
    return app


def _fsync_close(f: object) -> None:
    f.flush()  # type: ignore[attr-defined]
    os.fsync(f.fileno())  # type: ignore[attr-defined]
    f.close()  # type: ignore[attr-defined]


def serve(kind: str, data_dir: Path, port: int) -> None:
    if kind == "bare":
        from aiohttp import web

        data_dir.mkdir(parents=True, exist_ok=True)
        web.run_app(_bare_app(data_dir), host="127.0.0.1", port=port, access_log=None, print=None)  # type: ignore[arg-type]
        return
    from postroom.cli import main

    sys.argv = ["postroom", "serve"]
    main()


# --- client -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    kind: str
    proc: subprocess.Popen[bytes]
    url: str
    headers: dict[str, str]

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_server(kind: str, label: str, database_url: str, workers: int) -> Server:
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-upload-{label}-"))
    port = free_port()
    env = {
        **os.environ,
        "POSTROOM_STORAGE_DATA_DIR": str(data_dir / "data"),
        "POSTROOM_HTTP_PORT": str(port),
        "POSTROOM_SMTP_PORT": str(free_port()),
        "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "POSTROOM_PIPELINE_WORKERS": str(workers),
        "POSTROOM_LIMITS_REQUESTS_PER_SECOND": "1000000",
        "POSTROOM_LIMITS_BURST": "1000000",
        "POSTROOM_LOG_LEVEL": "WARNING",
        "POSTROOM_DATABASE_URL": database_url,
    }
    if not database_url:
        env.pop("POSTROOM_DATABASE_URL")
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve", kind, str(data_dir / "data"), str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    if kind == "bare":
        url, headers = f"http://127.0.0.1:{port}/upload", {}
    else:
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        url = f"http://127.0.0.1:{port}/api/v1/queues/1/upload"
        headers = {"Authorization": f"Basic {token}"}
    server = Server(label, proc, url, headers)
    _wait_listening(port, proc)
    return server


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                time.sleep(0.3)  # the listener is up; let start-up finish
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


BOUNDARY = "benchboundary7f3a9c"


async def multipart_body(shared: bytes, size: int) -> AsyncIterator[bytes]:
    """One `content` part of `size` bytes: a unique 16-byte head, then the shared buffer."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"; filename="bench.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    yield b"%PDF-1.4\n%" + os.urandom(6)
    view = memoryview(shared)
    sent = 16
    while sent < size:
        piece = view[: min(CHUNK, size - sent)]
        yield bytes(piece)
        sent += len(piece)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


@dataclass
class Cell:
    server: str
    size: str
    concurrency: int
    requests: int
    seconds: float
    latencies: list[float]
    peak_rss_mb: float
    errors: int
    cpu_seconds: float

    @property
    def cpu_ms_per_upload(self) -> float:
        return self.cpu_seconds / self.requests * 1000 if self.requests else 0.0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.per_second * SIZES[self.size] / 1e6

    def pct(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run_cell(server: Server, size_name: str, concurrency: int, seconds: float) -> Cell:
    size = SIZES[size_name]
    shared = os.urandom(min(size, CHUNK))
    latencies: list[float] = []
    errors = 0
    peak = server.rss_mb()
    stop_at = time.perf_counter() + seconds
    cap = CAP_PER_CLIENT[size_name]

    async def sample_rss() -> None:
        nonlocal peak
        while True:
            peak = max(peak, server.rss_mb())
            await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=600)
    headers = {**server.headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def client() -> None:
            nonlocal errors
            for sent in range(cap):
                if sent and time.perf_counter() >= stop_at:
                    return
                start = time.perf_counter()
                body = multipart_body(_shared_for(shared, size), size)
                async with session.post(server.url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 201:
                        errors += 1
                        continue
                latencies.append(time.perf_counter() - start)

        sampler = asyncio.create_task(sample_rss())
        cpu_before = server.cpu_seconds()
        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        cpu = server.cpu_seconds() - cpu_before
        sampler.cancel()
    return Cell(
        server.kind, size_name, concurrency, len(latencies), elapsed, latencies, peak, errors, cpu
    )


def _shared_for(shared: bytes, size: int) -> bytes:
    return shared if size >= CHUNK else shared[: max(0, size - 16)]


def print_table(cells: list[Cell]) -> None:
    bare = {(c.size, c.concurrency): c for c in cells if c.server == "bare"}
    header = (
        f"{'server':<10} {'size':>5} {'conc':>4} {'reqs':>6} {'uploads/s':>10} {'MB/s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'peak RSS MB':>11} {'CPU ms/up':>9} {'vs bare':>8} "
        f"{'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for c in cells:
        ref = bare.get((c.size, c.concurrency))
        ratio = f"{c.per_second / ref.per_second:.2f}" if ref and ref.per_second else "-"
        print(
            f"{c.server:<10} {c.size:>5} {c.concurrency:>4} {c.requests:>6} {c.per_second:>10.1f} "
            f"{c.mb_per_second:>8.1f} {c.pct(0.5):>8.1f} {c.pct(0.99):>8.1f} "
            f"{c.peak_rss_mb:>11.1f} {c.cpu_ms_per_upload:>9.2f} {ratio:>8} {c.errors:>6}"
        )


async def reset_postgres(url: str) -> None:
    # Imported here: the bare-handler process must not pay for SQLAlchemy in its RSS.
    from common import reset_postgres as reset

    await reset(url)


async def bench(args: argparse.Namespace) -> None:
    sizes = args.sizes.split(",")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    targets = [("bare", "bare", ""), ("postroom", "sqlite", "")]
    if args.database_url:
        targets.append(("postroom", "postgres", args.database_url))
    cells: list[Cell] = []
    for kind, label, url in targets:
        if url:
            await reset_postgres(url)
        server = start_server(kind, label, url, args.workers)
        try:
            # One upload before measuring: the first Basic request verifies the password with
            # argon2 (64 MiB, tens of ms) and caches it; that start-up cost is not intake's.
            await run_cell(server, "10k", 1, 0.001)
            for size in sizes:
                for concurrency in concurrencies:
                    cell = await run_cell(server, size, concurrency, args.seconds)
                    print(
                        f"  {label} {size} c{concurrency}: {cell.per_second:.1f}/s", file=sys.stderr
                    )
                    cells.append(cell)
        finally:
            server.stop()
    print_table(cells)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,1m,40m", help="comma list of 10k, 1m, 40m")
    parser.add_argument("--concurrency", default="1,20", help="comma list of client counts")
    parser.add_argument("--seconds", type=float, default=8.0, help="time bound per cell")
    parser.add_argument("--workers", type=int, default=0, help="Postroom pipeline workers")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("POSTROOM_DATABASE_URL", ""),
        help="also run Postroom on this PostgreSQL database (its schema is wiped)",
    )
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
