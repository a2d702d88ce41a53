"""Pipeline throughput: how many imports per second the workers finish, apart from HTTP intake.

Starts a Postroom service in this process, accepts N one-page PDFs (plus a `values` entry) in
batches through `intake.accept.accept_files` (as the receivers do, bytes stored once since they
are identical), then times until every annotation has left `importing`. Run it on SQLite
(default) and on PostgreSQL:

    .venv/bin/python bench/pipeline_throughput.py --files 500 --workers 4
    POSTROOM_DATABASE_URL=postgresql+asyncpg://postroom:postroom@127.0.0.1:5432/<db> \\
        .venv/bin/python bench/pipeline_throughput.py --files 500 --workers 4

PostgreSQL: the script drops and recreates the `public` schema of that database.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from common import reset_postgres

from postroom.app import Service
from postroom.config import load_settings
from postroom.db import tables as t
from postroom.intake.accept import Submission, accept_files, admit
from postroom.intake.storing import StoredFile


def one_page_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def run(files: int, workers: int, batch: int, data_dir: Path) -> None:
    environ = {
        "POSTROOM_STORAGE_DATA_DIR": str(data_dir),
        "POSTROOM_HTTP_PORT": "0",
        "POSTROOM_SMTP_ENABLED": "false",
        "POSTROOM_BOOTSTRAP_ADMIN_PASSWORD": "bench-password-123",
        "POSTROOM_PIPELINE_WORKERS": str(workers),
        "POSTROOM_LOG_LEVEL": "WARNING",
    }
    pg_url = os.environ.get("POSTROOM_DATABASE_URL", "")
    if pg_url:
        environ["POSTROOM_DATABASE_URL"] = pg_url
        await reset_postgres(pg_url)
    service = Service(load_settings(None, environ))
    await service.start()
    svc = service.runtime
    assert svc is not None
    try:
        writer = svc.blobs.open_writer()
        pdf = one_page_pdf()
        await writer.write(pdf)
        key = await writer.commit()
        stored = StoredFile(key, len(pdf), "application/pdf", "bench.pdf")
        started = time.perf_counter()
        for first in range(0, files, batch):
            count = min(batch, files - first)
            async with svc.db.transaction() as conn:
                await accept_files(
                    conn,
                    Submission(
                        organization_id=1,
                        creator_id=1,
                        files=[stored] * count,
                        rir_values={"upload:note": f"n{first}"},
                    ),
                    await admit(conn, 1, 1),
                )
            svc.jobs_available.set()
        accepted = time.perf_counter()
        while True:
            async with svc.db.reading() as conn:
                pending = (
                    await conn.execute(
                        sa.select(sa.func.count()).where(t.annotations.c.status == "importing")
                    )
                ).scalar_one()
            if pending == 0:
                break
            await asyncio.sleep(0.02)
        finished = time.perf_counter()
    finally:
        await service.stop()
    backend = "postgresql" if pg_url else "sqlite"
    elapsed = finished - started
    print(
        f"{backend}: {files} imports, {workers} workers: accepted in {accepted - started:.2f}s, "
        f"all settled in {elapsed:.2f}s → {files / elapsed:.0f} imports/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=50, help="files per accepted upload")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="postroom-bench-") as tmp:
        asyncio.run(run(args.files, args.workers, args.batch, Path(tmp)))


if __name__ == "__main__":
    main()
