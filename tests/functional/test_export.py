"""Queue export over real HTTP: the four formats parsed by standard readers, filters, paging,
CSV options, `to_status`, Basic auth and the errors that must be 4xx."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import openpyxl

from tests.annotation_rows import QueueRef, annotation_row, first_queue, insert_annotations
from tests.conftest import ADMIN_PASSWORD, ADMIN_USER, Api, RunningServer

ITEMS = [
    {"item_description": "Widget, large", "item_amount_total": "10.50"},
    {"item_description": 'Bolt "M6"', "item_amount_total": "2"},
]


def _svc(server: RunningServer) -> Any:
    assert server.service.runtime is not None
    return server.service.runtime


async def _seed(server: RunningServer, count: int = 1, **kw: Any) -> tuple[QueueRef, list[int]]:
    queue = await first_queue(_svc(server))
    ids = await insert_annotations(_svc(server), queue, count, **kw)
    return queue, ids


async def _raw(api: Api, method: str, path: str, **kw: Any) -> tuple[int, bytes, Any]:
    headers = {**api.headers, **kw.pop("headers", {})}
    async with api.session.request(method, api.url(path), headers=headers, **kw) as response:
        return response.status, await response.read(), response.headers


async def test_json_export_shape_and_values(server: RunningServer, admin: Api) -> None:
    """JSON export is a paginated envelope whose items carry url, document, schema and content values."""
    queue, ids = await _seed(
        server, 3, values={"note": "fragile", "document_id": "INV-7"}, line_items=ITEMS
    )
    status, body = await admin.get(
        f"/queues/{queue.queue_id}/export", params={"format": "json", "page_size": "2"}
    )
    assert status == 200, body
    assert body["pagination"]["total"] == 3 and body["pagination"]["total_pages"] == 2
    assert (
        body["pagination"]["next"].startswith(server.base)
        and "page=2" in body["pagination"]["next"]
    )
    item = body["results"][0]
    assert item["url"] == f"{server.api_url}/annotations/{ids[0]}"
    assert item["status"] == "to_review" and item["modifier"] is None
    assert item["document"]["file_name"] == "invoice.pdf"
    assert item["document"]["file"].endswith("/content")
    assert item["schema"] == {"url": f"{server.api_url}/schemas/{queue.schema_id}"}
    values = {
        dp["schema_id"]: dp["value"]
        for section in item["content"]
        for dp in section["children"]
        if dp["category"] == "datapoint"
    }
    assert values["note"] == "fragile" and values["document_id"] == "INV-7"
    table = next(
        node
        for section in item["content"]
        for node in section["children"]
        if node["category"] == "multivalue"
    )
    assert [row["children"][0]["value"] for row in table["children"]] == [
        "Widget, large",
        'Bolt "M6"',
    ]
    status, page2 = await admin.get(body["pagination"]["next"])
    assert status == 200 and len(page2["results"]) == 1


async def test_csv_has_label_headers_and_a_row_per_line_item(
    server: RunningServer, admin: Api
) -> None:
    """Default CSV: one column per datapoint headed by its label; line items expand into rows."""
    queue, _ids = await _seed(
        server, 2, values={"note": "n1", "document_id": "A-1"}, line_items=ITEMS
    )
    status, raw, headers = await _raw(
        admin, "GET", f"/queues/{queue.queue_id}/export", params={"format": "csv"}
    )
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    header = rows[0]
    assert header[:2] == ["Invoice number", "Issue date"]
    assert "Description" in header and "Note" in header
    body = rows[1:]
    assert len(body) == 2 * len(ITEMS)
    col = {name: header.index(name) for name in ("Invoice number", "Description", "Note", "Amount")}
    assert [r[col["Description"]] for r in body[:2]] == ["Widget, large", 'Bolt "M6"']
    assert all(r[col["Invoice number"]] == "A-1" and r[col["Note"]] == "n1" for r in body)
    assert body[0][col["Amount"]] == "10.50"


async def test_csv_columns_meta_and_dialect(server: RunningServer, admin: Api) -> None:
    """columns/prepend/append pick columns; delimiter, quote_char and quoting shape the file."""
    queue, ids = await _seed(server, 2, values={"note": "a;b", "amount_total": "900.00"})
    status, raw, _ = await _raw(
        admin,
        "GET",
        f"/queues/{queue.queue_id}/export",
        params={
            "format": "csv",
            "columns": "note,amount_total",
            "prepend_columns": "meta_file_name",
            "append_columns": "meta_url,meta_status",
            "delimiter": ";",
            "quote_char": "'",
            "quoting": "quote_non_numeric",
            "id": ",".join(map(str, ids)),
        },
    )
    assert status == 200
    text = raw.decode()
    rows = list(csv.reader(io.StringIO(text), delimiter=";", quotechar="'"))
    assert rows[0] == ["meta_file_name", "Note", "Total amount", "meta_url", "meta_status"]
    assert rows[1] == [
        "invoice.pdf",
        "a;b",
        "900.00",
        f"{server.api_url}/annotations/{ids[0]}",
        "to_review",
    ]
    # quote_non_numeric: the number stays bare, text is quoted.
    assert ";900.00;" in text.splitlines()[1] and "'a;b'" in text.splitlines()[1]


async def test_csv_option_errors_are_400(server: RunningServer, admin: Api) -> None:
    """Unknown column, quote_none without escape_char, a long delimiter, an unknown format: 400."""
    queue, _ = await _seed(server, 1)
    url = f"/queues/{queue.queue_id}/export"
    cases = [
        ({"format": "csv", "columns": "nope"}, "columns"),
        ({"format": "csv", "append_columns": "meta_nope"}, "append_columns"),
        ({"format": "csv", "quoting": "quote_none"}, "escape_char"),
        ({"format": "csv", "delimiter": ";;"}, "delimiter"),
        ({"format": "csv", "quoting": "sometimes"}, "quoting"),
        ({"format": "pdf"}, "format"),
        ({"format": "json", "page_size": "5000"}, "page_size"),
        ({"format": "json", "arrived_at_after": "yesterday"}, "arrived_at_after"),
    ]
    for params, field in cases:
        status, body = await admin.get(url, params=params)
        assert status == 400, (params, body)
        assert body["code"] == "bad_request" and field in body["detail"], (params, body)


async def test_xml_parses_and_holds_values(server: RunningServer, admin: Api) -> None:
    """XML export parses with xml.etree: annotations with url, document, sections, tuples, pagination."""
    queue, ids = await _seed(server, 2, values={"note": "x<&>y\x01"}, line_items=ITEMS)
    status, raw, headers = await _raw(
        admin, "GET", f"/queues/{queue.queue_id}/export", params={"format": "xml"}
    )
    assert status == 200 and "xml" in headers["Content-Type"]
    root = ET.fromstring(raw)
    assert root.tag == "export"
    annotations = root.findall("./results/annotation")
    assert [el.get("url") for el in annotations] == [
        f"{server.api_url}/annotations/{i}" for i in ids
    ]
    first = annotations[0]
    assert first.findtext("status") == "to_review"
    assert first.findtext("document/file_name") == "invoice.pdf"
    assert first.find("schema").get("url").endswith(f"/schemas/{queue.schema_id}")  # type: ignore[union-attr]
    note = first.find(".//datapoint[@schema_id='note']")
    assert note is not None and note.text == "x<&>y" and note.get("type") == "string"
    rows = first.findall(".//multivalue[@schema_id='line_items']/tuple")
    assert len(rows) == 2
    assert rows[1].findtext("datapoint[@schema_id='item_description']") == 'Bolt "M6"'
    assert root.findtext("pagination/total") == "2"


async def test_xlsx_opens_in_openpyxl(server: RunningServer, admin: Api) -> None:
    """XLSX export opens with openpyxl: label headers, values, numbers as numbers, a row per line item."""
    queue, _ = await _seed(
        server, 2, values={"note": "=cmd()", "amount_total": "12.5"}, line_items=ITEMS
    )
    status, raw, headers = await _raw(
        admin, "GET", f"/queues/{queue.queue_id}/export", params={"format": "xlsx"}
    )
    assert status == 200 and headers["Content-Type"].endswith("spreadsheetml.sheet")
    assert int(headers["Content-Length"]) == len(raw)
    sheet = openpyxl.load_workbook(io.BytesIO(raw), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    assert len(rows) == 1 + 2 * len(ITEMS)
    assert rows[1][header.index("Note")] == "'=cmd()"  # a string, never a formula (OWASP)
    assert rows[1][header.index("Total amount")] == 12.5
    assert rows[2][header.index("Description")] == 'Bolt "M6"'
    assert not any(p.name.endswith(".part") for p in (server.data_dir / "tmp").iterdir())


async def test_accept_header_picks_the_format(server: RunningServer, admin: Api) -> None:
    """Without `format`, the Accept header chooses CSV or XML; nothing named means JSON."""
    queue, _ = await _seed(server, 1)
    url = f"/queues/{queue.queue_id}/export"
    _, raw, headers = await _raw(admin, "GET", url, headers={"Accept": "text/csv"})
    assert headers["Content-Type"].startswith("text/csv") and raw.startswith(b"Invoice number")
    _, raw, headers = await _raw(
        admin, "GET", url, headers={"Accept": "text/html, application/xml;q=0.9"}
    )
    assert raw.startswith(b"<?xml") and "xml" in headers["Content-Type"]
    _, raw, _ = await _raw(admin, "GET", url, headers={"Accept": "*/*"})
    assert json.loads(raw)["pagination"]["total"] == 1


async def test_unpaged_csv_returns_everything(server: RunningServer, admin: Api) -> None:
    """CSV without page/page_size holds all 1,234 annotations (more than one batch)."""
    queue, ids = await _seed(server, 1234)
    status, raw, _ = await _raw(
        admin,
        "GET",
        f"/queues/{queue.queue_id}/export",
        params={"format": "csv", "columns": "meta_url"},
    )
    assert status == 200
    urls = [row[0] for row in csv.reader(io.StringIO(raw.decode()))][1:]
    assert urls == [f"{server.api_url}/annotations/{i}" for i in ids]
    status, raw, _ = await _raw(
        admin,
        "GET",
        f"/queues/{queue.queue_id}/export",
        params={"format": "csv", "columns": "meta_url", "page": "2", "page_size": "1000"},
    )
    assert len(raw.decode().splitlines()) == 1 + 234


async def test_filters_apply(server: RunningServer, admin: Api) -> None:
    """status, id and search filters limit the export."""
    queue, to_review = await _seed(server, 2, values={"note": "alpha"})
    _, confirmed = await _seed(server, 3, status="confirmed", values={"note": "beta"})
    url = f"/queues/{queue.queue_id}/export"
    _, body = await admin.get(url, params={"status": "confirmed"})
    assert body["pagination"]["total"] == 3
    _, body = await admin.get(url, params={"id": f"{to_review[0]},{confirmed[0]}"})
    assert body["pagination"]["total"] == 2
    _, body = await admin.get(url, params={"search": "ALPHA"})
    assert body["pagination"]["total"] == 2
    _, body = await admin.get(url, params={"arrived_at_before": "2000-01-01"})
    assert body["pagination"]["total"] == 0


async def test_post_to_status_exported_moves_only_confirmed(
    server: RunningServer, admin: Api
) -> None:
    """POST to_status=exported exports and marks confirmed ones; exported ones come back unchanged."""
    queue, confirmed = await _seed(server, 3, status="confirmed")
    _, done = await _seed(server, 1, status="exported")
    _, review = await _seed(server, 1, status="to_review")
    before = await annotation_row(_svc(server), done[0])
    status, body = await admin.post(
        f"/queues/{queue.queue_id}/export",
        params={"format": "json", "to_status": "exported", "status": "confirmed,exported"},
    )
    assert status == 200, body
    assert body["pagination"]["total"] == 4
    assert sorted(r["status"] for r in body["results"]) == ["exported"] * 4
    for aid in confirmed:
        row = await annotation_row(_svc(server), aid)
        assert row.status == "exported" and row.exported_at is not None
        assert row.exported_by_id == queue.user_id
    assert (await annotation_row(_svc(server), done[0])).exported_at == before.exported_at
    assert (await annotation_row(_svc(server), review[0])).status == "to_review"


async def test_to_status_exporting_is_finished_by_the_export_job(
    server: RunningServer, admin: Api
) -> None:
    """POST to_status=exporting exports the confirmed ones; the export job then ends them exported."""
    queue, ids = await _seed(server, 2, status="confirmed")
    status, raw, _ = await _raw(
        admin,
        "POST",
        f"/queues/{queue.queue_id}/export",
        params={"format": "xml", "to_status": "exporting", "status": "confirmed"},
    )
    assert status == 200
    # The job may already have run by the time a batch is read: either status is the truth.
    statuses = [el.text for el in ET.fromstring(raw).iter("status")]
    assert len(statuses) == 2 and set(statuses) <= {"exporting", "exported"}
    for _ in range(200):
        rows = [await annotation_row(_svc(server), i) for i in ids]
        if all(r.status == "exported" for r in rows):
            break
        await asyncio.sleep(0.05)
    assert [r.status for r in rows] == ["exported", "exported"]


async def test_to_status_errors(server: RunningServer, admin: Api) -> None:
    """to_status on GET, or a value other than exporting/exported on POST, answers 400 and moves nothing."""
    queue, ids = await _seed(server, 1, status="confirmed")
    url = f"/queues/{queue.queue_id}/export"
    status, body = await admin.get(url, params={"to_status": "exported"})
    assert status == 400 and "to_status" in body["detail"]
    status, body = await admin.post(url, params={"to_status": "deleted"})
    assert status == 400 and "to_status" in body["detail"]
    assert (await annotation_row(_svc(server), ids[0])).status == "confirmed"


async def test_basic_auth_and_visibility(
    server: RunningServer, admin: Api, http: aiohttp.ClientSession
) -> None:
    """Export accepts Basic credentials; an unassigned annotator gets 404; no credentials get 401."""
    queue, _ = await _seed(server, 1)
    url = f"{server.api_url}/queues/{queue.queue_id}/export?format=csv"
    basic = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    async with http.get(url, headers={"Authorization": f"Basic {basic}"}) as response:
        assert response.status == 200
        assert (await response.text()).startswith("Invoice number")
    async with http.get(url) as response:
        assert response.status == 401
    stranger = await admin.create_user("outsider", "annotator", [])
    status, body = await stranger.get(f"/queues/{queue.queue_id}/export")
    assert status == 404 and body["code"] == "not_found"
