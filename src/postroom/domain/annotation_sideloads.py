"""`GET /annotations?sideload=…`: related objects of a page of annotations, in one response.

`content` is the flat list of the page's datapoints (filtered by `content.schema_id`), each with
a URL naming its annotation, as the `rossum-api` SDK regroups them; `documents` the documents.
Other sideloads of the reference answer an empty list (Postroom has no such objects, or keeps
them as URLs), so clients that ask for them still find the key they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from postroom.db import tables as t
from postroom.domain.annotation_content import datapoints
from postroom.domain.documents import DocumentJson, document_annotations, render_document
from postroom.urls import Urls

# Every sideload keyword the reference lists for annotations.
KNOWN = frozenset(
    [
        "assignees",
        "automation_blockers",
        "confirmed_bys",
        "content",
        "creators",
        "deleted_bys",
        "documents",
        "emails",
        "exported_bys",
        "labels",
        "modifiers",
        "notes",
        "organizations",
        "pages",
        "purged_bys",
        "queues",
        "rejected_bys",
        "related_emails",
        "relations",
        "child_relations",
        "schemas",
        "suggested_edits",
        "workflow_runs",
        "workspaces",
    ]
)


def requested(query: Mapping[str, str]) -> list[str]:
    raw = query.get("sideload", "")
    return [name for name in dict.fromkeys(p.strip() for p in raw.split(",")) if name in KNOWN]


async def sideloads(
    conn: AsyncConnection, urls: Urls, query: Mapping[str, str], rows: list[Any]
) -> dict[str, list[Any]]:
    """The sideload keys asked for in `query`, for the annotations in `rows`."""
    found: dict[str, list[Any]] = {}
    for name in requested(query):
        if name == "content":
            schema_ids = {s for s in query.get("content.schema_id", "").split(",") if s}
            found[name] = await _content(conn, [row.id for row in rows], schema_ids)
        elif name == "documents":
            found[name] = await _documents(conn, urls, [row.document_id for row in rows])
        else:
            found[name] = []
    return found


async def _content(
    conn: AsyncConnection, annotation_ids: list[int], schema_ids: set[str]
) -> list[dict[str, Any]]:
    if not annotation_ids:
        return []
    a = t.annotations.c
    result = await conn.execute(sa.select(a.content).where(a.id.in_(annotation_ids)).order_by(a.id))
    return [
        node
        for (content,) in result
        for node in datapoints(content or [])
        if not schema_ids or node.get("schema_id") in schema_ids
    ]


async def _documents(
    conn: AsyncConnection, urls: Urls, document_ids: list[int]
) -> list[DocumentJson]:
    ids = sorted(set(document_ids))
    if not ids:
        return []
    d = t.documents.c
    rows = (await conn.execute(sa.select(t.documents).where(d.id.in_(ids)).order_by(d.id))).all()
    annotations_of = await document_annotations(conn, ids)
    return [render_document(urls, row, annotations_of.get(row.id, [])) for row in rows]
