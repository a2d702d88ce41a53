"""The `rossum-api` SDK's export, unchanged, against a real Postroom: `export_annotations_to_file`
streams CSV, XML and XLSX without paging and must get every annotation of the queue."""

from __future__ import annotations

import asyncio
import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

import openpyxl
from rossum_api import SyncRossumAPIClient
from rossum_api.domain_logic.annotations import ExportFileFormats
from rossum_api.dtos import UserCredentials

from tests.annotation_rows import first_queue, insert_annotations
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer
from tests.pipeline_support import make_pdf, settled, submit

QUEUE_SIZE = 250
UPLOADED = 5


def _export(server: RunningServer, queue_id: int, fmt: ExportFileFormats, **filters: Any) -> bytes:
    """What the SDK's sync client streams (it blocks: run it in a thread)."""
    client = SyncRossumAPIClient(
        base_url=server.api_url, credentials=UserCredentials(ADMIN_USER, ADMIN_PASSWORD)
    )
    try:
        return b"".join(client.export_annotations_to_file(queue_id, fmt, **filters))
    finally:
        client.internal_client.client.close()


async def test_sdk_exports_every_annotation_of_a_queue_of_250(
    server: RunningServer, admin: Api
) -> None:
    """CSV, XML and XLSX from export_annotations_to_file each hold all 250 annotations, with the
    values given at upload."""
    svc = server.service.runtime
    assert svc is not None
    queue = await first_queue(svc)
    inserted = await insert_annotations(svc, queue, QUEUE_SIZE - UPLOADED, values={"note": "bulk"})
    uploaded = await submit(
        admin,
        [(f"sdk-{i}.pdf", make_pdf()) for i in range(UPLOADED)],
        values={"upload:note": "from the upload"},
    )
    for annotation_id in uploaded:
        await settled(admin, annotation_id)
    expected = {f"{server.api_url}/annotations/{i}" for i in inserted + uploaded}

    raw = await asyncio.to_thread(
        _export, server, queue.queue_id, ExportFileFormats.CSV, columns=["meta_url", "note"]
    )
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    assert rows[0] == ["meta_url", "Note"]
    assert {r[0] for r in rows[1:]} == expected and len(rows) == QUEUE_SIZE + 1
    notes = {r[0]: r[1] for r in rows[1:]}
    assert {notes[f"{server.api_url}/annotations/{i}"] for i in uploaded} == {"from the upload"}

    raw = await asyncio.to_thread(_export, server, queue.queue_id, ExportFileFormats.XML)
    root = ET.fromstring(raw)
    assert {a.get("url") for a in root.iter("annotation")} == expected
    assert root.findtext("pagination/total") == str(QUEUE_SIZE)
    xml_notes = {
        a.get("url"): a.findtext(".//datapoint[@schema_id='note']") for a in root.iter("annotation")
    }
    assert {xml_notes[f"{server.api_url}/annotations/{i}"] for i in uploaded} == {"from the upload"}

    raw = await asyncio.to_thread(_export, server, queue.queue_id, ExportFileFormats.XLSX)
    sheet = openpyxl.load_workbook(io.BytesIO(raw), read_only=True).active
    table = list(sheet.iter_rows(values_only=True))
    note_col = list(table[0]).index("Note")
    assert len(table) == QUEUE_SIZE + 1
    assert sorted(r[note_col] for r in table[1:]).count("from the upload") == UPLOADED


async def test_sdk_export_with_to_status_uses_post_and_marks_exported(
    server: RunningServer, admin: Api
) -> None:
    """The SDK sends to_status with POST; the confirmed annotations come back and end exported."""
    svc = server.service.runtime
    assert svc is not None
    queue = await first_queue(svc)
    confirmed = await insert_annotations(svc, queue, 12, status="confirmed")
    await insert_annotations(svc, queue, 3, status="to_review")
    raw = await asyncio.to_thread(
        _export,
        server,
        queue.queue_id,
        ExportFileFormats.CSV,
        columns=["meta_url", "meta_status"],
        to_status="exported",
        status="confirmed",
    )
    rows = list(csv.reader(io.StringIO(raw.decode())))[1:]
    assert sorted(r[0] for r in rows) == sorted(
        f"{server.api_url}/annotations/{i}" for i in confirmed
    )
    assert {r[1] for r in rows} == {"exported"}
    _, body = await admin.get(f"/queues/{queue.queue_id}")
    assert body["counts"]["exported"] == 12 and body["counts"]["confirmed"] == 0
