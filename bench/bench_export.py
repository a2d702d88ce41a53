"""Export of N annotations in each format: wall time, throughput and peak resident memory.

Setup inserts N annotations (each with header values and two line items) straight into the
database of a fresh data dir — the export is what is measured, not the intake. Then, for every
format, a fresh Python process starts the service on that data dir (pipeline workers and SMTP
off), downloads the export over real HTTP (Basic auth, the response counted and discarded) and
reports the time and its peak RSS (VmHWM) next to its RSS before the export, so formats do not
inherit each other's peak. CSV, XML and XLSX are fetched unpaged (all N in one response); JSON
is paginated, so it is fetched page by page (page_size=1000), as a client would.

    .venv/bin/python bench/bench_export.py --count 10000
    POSTROOM_DATABASE_URL=postgresql+asyncpg://postroom:postroom@127.0.0.1:5432/<db> \\
        .venv/bin/python bench/bench_export.py --count 10000

With POSTROOM_DATABASE_URL set, the script drops and recreates that database's `public` schema.
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
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-123"
FORMATS = ("json", "csv", "xml", "xlsx")
LINE_ITEMS = [
    {"item_description": "Consulting, March", "item_amount_total": "1200.00"},
    {"item_description": "Travel", "item_amount_total": "310.50"},
]
VALUES = {
    "document_id": "INV-2026-0001",
    "date_issue": "2026-11-01",
    "amount_total": "1510.50",
    "currency": "eur",
    "note": "bench annotation with a longer note to make rows realistic",
}


def environ(data_dir: Path) -> dict[str, str]:
    env = {
        "POSTROOM_STORAGE_DATA_DIR": str(data_dir),
        "POSTROOM_HTTP_PORT": "0",
        "POSTROOM_SMTP_ENABLED": "false",
        "POSTROOM_PIPELINE_WORKERS": "0",
        "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "POSTROOM_LOG_LEVEL": "WARNING",
    }
    if os.environ.get("POSTROOM_DATABASE_URL"):
        env["POSTROOM_DATABASE_URL"] = os.environ["POSTROOM_DATABASE_URL"]
    return env


def memory_kib() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def reset_peak() -> None:
    """Restart VmHWM from the current RSS (Linux: clear_refs "5"), so start-up does not count."""
    Path("/proc/self/clear_refs").write_text("5")


async def start_service(data_dir: Path) -> Any:
    from postroom.app import Service
    from postroom.config import load_settings

    service = Service(load_settings(None, environ(data_dir)))
    running = await service.start()
    return service, running.http_port


async def setup(data_dir: Path, count: int) -> None:
    from tests.annotation_rows import first_queue, insert_annotations

    if os.environ.get("POSTROOM_DATABASE_URL"):
        from tests.conftest import reset_postgres

        await reset_postgres(os.environ["POSTROOM_DATABASE_URL"])
    service, _port = await start_service(data_dir)
    try:
        svc = service.services
        queue = await first_queue(svc)
        await insert_annotations(
            svc, queue, count, status="confirmed", values=VALUES, line_items=LINE_ITEMS
        )
    finally:
        await service.stop()


async def fetch(session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> int:
    size = 0
    async with session.get(url, params=params) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(256 * 1024):
            size += len(chunk)
    return size


async def measure(data_dir: Path, fmt: str) -> dict[str, Any]:
    """Runs in the child process: one export of every annotation in `fmt`."""
    service, port = await start_service(data_dir)
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    url = f"http://127.0.0.1:{port}/api/v1/queues/1/export"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}"}) as session:
            # A warm-up request (credentials cached, code paths imported), then the baseline.
            await fetch(session, url, {"format": "json", "page_size": "1"})
            rss_before, _ = memory_kib()
            reset_peak()
            started = time.perf_counter()
            if fmt == "json":
                size, page = 0, 1
                while True:
                    params = {"format": "json", "page_size": "1000", "page": str(page)}
                    async with session.get(url, params=params) as response:
                        body = await response.read()
                    size += len(body)
                    if json.loads(body)["pagination"]["next"] is None:
                        break
                    page += 1
            else:
                size = await fetch(session, url, {"format": fmt})
            elapsed = time.perf_counter() - started
        _, peak = memory_kib()
    finally:
        await service.stop()
    return {
        "format": fmt,
        "seconds": elapsed,
        "bytes": size,
        "rss_before_kib": rss_before,
        "peak_kib": peak,
    }


def run_child(data_dir: Path, fmt: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", fmt, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure(args.data_dir, args.child))))
        return
    backend = "PostgreSQL" if os.environ.get("POSTROOM_DATABASE_URL") else "SQLite"
    with tempfile.TemporaryDirectory(prefix="postroom-bench-export-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        asyncio.run(setup(data_dir, args.count))
        print(
            f"{backend}: inserted {args.count} annotations in {time.perf_counter() - started:.1f} s"
        )
        print(
            f"{'format':<6} {'seconds':>8} {'annot/s':>9} {'MiB out':>8} {'RSS before':>11} {'peak RSS':>9}"
        )
        for fmt in args.formats.split(","):
            r = run_child(data_dir, fmt)
            print(
                f"{fmt:<6} {r['seconds']:>8.2f} {args.count / r['seconds']:>9.0f} "
                f"{r['bytes'] / 2**20:>8.2f} {r['rss_before_kib'] / 1024:>8.0f} MiB "
                f"{r['peak_kib'] / 1024:>5.0f} MiB"
            )


if __name__ == "__main__":
    main()
