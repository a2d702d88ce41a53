"""Schemas over real HTTP: CRUD, content validation naming the bad node, deletion rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.conftest import Api, RunningServer
from tests.records import add_queue

CONTENT: list[dict[str, Any]] = [
    {
        "category": "section",
        "id": "invoice_details_section",
        "label": "Invoice details",
        "icon": None,
        "children": [
            {
                "category": "datapoint",
                "id": "document_id",
                "label": "Invoice number",
                "type": "string",
                "rir_field_names": ["document_id"],
            },
            {
                "category": "datapoint",
                "id": "currency",
                "label": "Currency",
                "type": "enum",
                "options": [{"value": "eur", "label": "Euro"}],
            },
            {
                "category": "multivalue",
                "id": "line_items",
                "label": "Line items",
                "children": {
                    "category": "tuple",
                    "id": "line_item",
                    "label": "Line item",
                    "children": [
                        {"category": "datapoint", "id": "item_amount", "type": "number"},
                        {"category": "datapoint", "id": "item_button", "type": "button"},
                    ],
                },
            },
            {
                "category": "multivalue",
                "id": "po_numbers",
                "children": {"category": "datapoint", "id": "po_number", "type": "string"},
            },
        ],
    }
]


def _broken(path: tuple[Any, ...], key: str, value: Any) -> list[dict[str, Any]]:
    content = copy.deepcopy(CONTENT)
    node: Any = content
    for step in path:
        node = node[step]
    node[key] = value
    return content


async def test_create_schema_returns_reference_fields(admin: Api, server: RunningServer) -> None:
    """POST /schemas answers 201 with id, url, queues, content, metadata, modified_by/at."""
    status, body = await admin.post("/schemas", json={"name": "Test Schema", "content": CONTENT})
    assert status == 201, body
    assert body["url"] == f"{server.api_url}/schemas/{body['id']}"
    assert body["name"] == "Test Schema"
    assert body["queues"] == [] and body["metadata"] == {}
    assert body["content"] == CONTENT
    assert body["modified_by"] == f"{server.api_url}/users/1"
    assert body["modified_at"].endswith("Z")
    assert (await admin.get(f"/schemas/{body['id']}")) == (200, body)


async def test_empty_schema_and_bootstrap_schema_queues(admin: Api, server: RunningServer) -> None:
    """An empty content is accepted; the bootstrap schema lists the queue using it; ?queue= filters."""
    status, empty = await admin.post("/schemas", json={"name": "Empty", "content": []})
    assert status == 201 and empty["content"] == []
    status, first = await admin.get("/schemas/1")
    assert status == 200 and first["queues"] == [f"{server.api_url}/queues/1"]
    status, listed = await admin.get("/schemas", params={"queue": "1"})
    assert [s["id"] for s in listed["results"]] == [1]
    assert listed["pagination"]["total"] == 1


BAD_CONTENT = [
    ("not a list", {"x": 1}, "content"),
    ("top level datapoint", [CONTENT[0]["children"][0]], "content[0]"),
    ("section without children", [{"category": "section", "id": "s"}], "content[0] (id 's')"),
    ("id too long", _broken((0, "children", 0), "id", "d" * 51), "content[0].children[0]"),
    ("duplicate id", _broken((0, "children", 1), "id", "document_id"), "not unique"),
    ("bad type", _broken((0, "children", 0), "type", "money"), "id 'document_id'"),
    ("missing type", _broken((0, "children", 0), "type", None), "type must be one of"),
    (
        "tuple directly in a section",
        _broken((0,), "children", [CONTENT[0]["children"][2]["children"]]),
        "category must be datapoint or multivalue",
    ),
    (
        "button as multivalue child",
        _broken((0, "children", 3, "children"), "type", "button"),
        "button cannot be a direct child",
    ),
    ("multivalue children list", _broken((0, "children", 3), "children", []), "id 'po_numbers'"),
    ("bad rir_field_names", _broken((0, "children", 0), "rir_field_names", "x"), "rir_field_names"),
    ("bad enum options", _broken((0, "children", 1), "options", ["eur"]), "options"),
    ("bad label", _broken((0, "children", 0), "label", 5), "label must be a string"),
]


@pytest.mark.parametrize(
    ("case", "content", "expected"), BAD_CONTENT, ids=[c[0] for c in BAD_CONTENT]
)
async def test_bad_content_is_400_naming_the_node(
    admin: Api, case: str, content: Any, expected: str
) -> None:
    """Every rule of the schema content answers 400 whose detail names the offending node."""
    status, err = await admin.post("/schemas", json={"name": case, "content": content})
    assert status == 400, err
    assert err["code"] == "bad_request"
    assert err["detail"].startswith("content") and expected in err["detail"], err["detail"]
    status, err = await admin.post("/schemas/validate", json={"content": content})
    assert status == 400 and expected in err["detail"]


async def test_validate_endpoint_accepts_good_content(admin: Api) -> None:
    """POST /schemas/validate answers 200 for a valid content and stores nothing."""
    status, body = await admin.post("/schemas/validate", json={"content": CONTENT})
    assert status == 200 and body == {}
    status, listed = await admin.get("/schemas")
    assert listed["pagination"]["total"] == 1


async def test_update_schema_patch_and_put(admin: Api) -> None:
    """PATCH changes only what is sent (content validated); PUT requires name and content."""
    status, created = await admin.post("/schemas", json={"name": "S", "content": []})
    path = f"/schemas/{created['id']}"
    status, patched = await admin.patch(path, json={"content": CONTENT})
    assert status == 200 and patched["content"] == CONTENT and patched["name"] == "S"
    status, err = await admin.patch(path, json={"content": _broken((0,), "id", "")})
    assert status == 400 and "content[0]" in err["detail"]
    status, err = await admin.put(path, json={"name": "S2"})
    assert status == 400 and err["detail"].startswith("content")
    status, put = await admin.put(path, json={"name": "S2", "content": [], "metadata": {"k": 1}})
    assert status == 200 and put["content"] == [] and put["metadata"] == {"k": 1}


async def test_delete_schema_in_use_is_409(admin: Api, server: RunningServer) -> None:
    """A schema used by a queue cannot be deleted (409); an unused one answers 204, then 404."""
    status, err = await admin.delete("/schemas/1")
    assert status == 409 and err["code"] == "conflict_status"
    status, created = await admin.post("/schemas", json={"name": "Spare", "content": CONTENT})
    queue_id = await add_queue(server, "Uses spare", schema_id=created["id"])
    assert queue_id
    status, _ = await admin.delete(f"/schemas/{created['id']}")
    assert status == 409
    status, unused = await admin.post("/schemas", json={"name": "Unused", "content": []})
    assert (await admin.delete(f"/schemas/{unused['id']}"))[0] == 204
    assert (await admin.get(f"/schemas/{unused['id']}"))[0] == 404


async def test_annotator_reads_schemas_but_cannot_write(admin: Api) -> None:
    """Annotators read schemas (they annotate with them) but writing is 403."""
    annotator = await admin.create_user("schemaann", "annotator", [1])
    status, body = await annotator.get("/schemas/1")
    assert status == 200 and body["content"]
    status, err = await annotator.post("/schemas", json={"name": "X", "content": []})
    assert status == 403 and err["code"] == "access_forbidden"
    assert (await annotator.delete("/schemas/1"))[0] == 403


async def test_schema_from_template(admin: Api) -> None:
    """POST /schemas/from_template copies a shipped template's content; unknown names are 400."""
    status, body = await admin.post(
        "/schemas/from_template", json={"name": "Test Schema", "template_name": "EU Demo Template"}
    )
    assert status == 201, body
    assert body["name"] == "Test Schema" and body["queues"] == []
    assert body["content"] and body["content"][0]["category"] == "section"
    status, err = await admin.post(
        "/schemas/from_template", json={"name": "x", "template_name": "Martian Template"}
    )
    assert status == 400 and err["detail"].startswith("template_name")
    assert "EU Invoice Template" in err["detail"]


async def test_large_schema_body_is_read_whole(admin: Api) -> None:
    """A schema body of about 1 MiB (several network reads) is stored completely."""
    children = [
        {"category": "datapoint", "id": f"dp_{i}", "type": "string", "label": "x" * 300}
        for i in range(3000)
    ]
    content = [{"category": "section", "id": "big", "children": children}]
    status, body = await admin.post("/schemas", json={"name": "Big", "content": content})
    assert status == 201, body
    assert len(body["content"][0]["children"]) == 3000


async def test_json_values_the_database_cannot_hold_are_400(admin: Api) -> None:
    """NaN and U+0000 (which PostgreSQL refuses) are 400 bad_request, never a server error."""
    for raw in (b'{"name": "a\\u0000b"}', b'{"name": "n", "metadata": {"k": NaN}}'):
        status, err = await admin.post(
            "/schemas", data=raw, headers={"Content-Type": "application/json"}
        )
        assert status == 400 and err["code"] == "bad_request", err
    status, listed = await admin.get("/schemas")
    assert listed["pagination"]["total"] == 1
