"""Stored bytes as an HTTP answer: `GET …/{id}/content` of documents and e-mails, sent from the
file in pieces (sendfile), never read whole."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from postroom.api.routing import Call, Download, Routes
from postroom.domain.access import Actor
from postroom.domain.stored_files import StoredBytes
from postroom.errors import NotFound
from postroom.runtime import Runtime


class WithContent(Protocol):
    async def content(self, rt: Runtime, who: Actor, object_id: int) -> StoredBytes: ...


def content_route(routes: Routes, path: str, owner: WithContent, answer: Download) -> None:
    """Declare `GET <path>/{id}/content`: the bytes `owner.content` names (404 when gone)."""

    async def content(call: Call) -> web.FileResponse:
        stored = await owner.content(call.rt, call.actor, call.id)
        return web.FileResponse(stored.path, headers=stored.headers)

    routes.add(
        "GET",
        f"{path}/{{id}}/content",
        content,
        summary=answer.description,
        response=answer,
        errors=(NotFound,),
    )
