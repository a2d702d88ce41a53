"""Throughput with one and with two `postroom serve` instances on one PostgreSQL database.

For each instance count it resets the database, starts that many real server processes sharing
one data dir (the first bootstraps), uploads N small files over HTTP (`POST /queues/1/upload`,
multipart, spread round-robin over the instances, C at a time), and reports:

- intake: files acknowledged (201) per second, and the 50th/95th percentile request latency;
- end to end: files per second from the first request until no annotation is left `importing`.

    POSTROOM_DATABASE_URL=postgresql+asyncpg://postroom:postroom@127.0.0.1:5432/<db> \\
        .venv/bin/python bench/bench_instances.py --files 400 --concurrency 16

The script drops and recreates the `public` schema of that database. Keep runs short on shared
machines: every instance runs its own pipeline workers (`--workers` each).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from common import reset_postgres
from sqlalchemy.ext.asyncio import create_async_engine

PASSWORD = "bench-password-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_instance(
    data_dir: Path, url: str, workers: int
) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {
        **os.environ,
        "POSTROOM_DATABASE_URL": url,
        "POSTROOM_STORAGE_DATA_DIR": str(data_dir),
        "POSTROOM_HTTP_PORT": str(port),
        "POSTROOM_SMTP_ENABLED": "false",
        "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "POSTROOM_PIPELINE_WORKERS": str(workers),
        "POSTROOM_LIMITS_REQUESTS_PER_SECOND": "0",
        "POSTROOM_LOG_LEVEL": "WARNING",
    }
    log = (data_dir.parent / f"serve-{port}.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "postroom", "serve", env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.returncode is not None:
                raise SystemExit(f"serve exited early; see {log.name}")
            try:
                async with http.get(base + "/api/v1/health") as response:
                    if response.status == 200:
                        return proc, base
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("serve did not become healthy")


async def importing_left(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int(
                await conn.scalar(
                    sa.text("SELECT count(*) FROM annotations WHERE status = 'importing'")
                )
            )
    finally:
        await engine.dispose()


async def upload_all(bases: list[str], files: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:
        login = {"username": "admin", "password": PASSWORD}
        async with http.post(bases[0] + "/api/v1/auth/login", json=login) as response:
            headers = {"Authorization": "Bearer " + (await response.json())["key"]}

        async def one(i: int) -> None:
            form = aiohttp.FormData()
            form.add_field("content", f"Invoice {i}\nTotal {i} EUR\n".encode(), filename=f"{i}.txt")
            base = bases[i % len(bases)]
            async with gate:
                started = time.perf_counter()
                async with http.post(
                    base + "/api/v1/queues/1/upload", data=form, headers=headers
                ) as response:
                    await response.read()
                    if response.status != 201:
                        raise SystemExit(f"upload {i} answered {response.status}")
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one(i) for i in range(files)))
    return latencies


async def run_once(url: str, instances: int, files: int, concurrency: int, workers: int) -> str:
    await reset_postgres(url)
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp:
        data = Path(tmp) / "data"
        procs = []
        try:
            for _ in range(instances):  # one at a time: the first one bootstraps
                procs.append(await start_instance(data, url, workers))
            bases = [base for _, base in procs]
            started = time.perf_counter()
            latencies = await upload_all(bases, files, concurrency)
            intake_s = time.perf_counter() - started
            while True:
                if not await importing_left(url):
                    break
                await asyncio.sleep(0.2)
            total_s = time.perf_counter() - started
        finally:
            for proc, _ in procs:
                proc.send_signal(signal.SIGTERM)
            for proc, _ in procs:
                await asyncio.wait_for(proc.wait(), 30)
    q = statistics.quantiles(latencies, n=20)
    return (
        f"{instances:>9}  {files:>5}  {files / intake_s:>9.1f}  {q[9] * 1000:>7.1f}  "
        f"{q[18] * 1000:>7.1f}  {files / total_s:>10.1f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=4, help="pipeline workers per instance")
    parser.add_argument("--instances", default="1,2", help="instance counts to measure")
    args = parser.parse_args()
    url = os.environ.get("POSTROOM_DATABASE_URL", "")
    if not url.startswith("postgresql"):
        raise SystemExit(
            "set POSTROOM_DATABASE_URL=postgresql+asyncpg://... (several instances need PostgreSQL)"
        )
    print("instances  files   intake/s   p50 ms   p95 ms  end2end/s")
    for count in (int(n) for n in args.instances.split(",")):
        print(await run_once(url, count, args.files, args.concurrency, args.workers), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
