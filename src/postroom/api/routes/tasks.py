"""`GET /tasks/{id}`: the status monitor of an asynchronous upload or e-mail import."""

from __future__ import annotations

from aiohttp import web

from postroom.api.routing import Call, Param, Redirect, Routes
from postroom.domain.tasks import TASKS, TaskJson
from postroom.errors import NotFound

routes = Routes()
_TRUE = ("1", "true", "yes", "on")


@routes.get(
    "/tasks/{id}",
    query=(
        Param(
            "no_redirect",
            {"type": "string"},
            "Answer the task even when it succeeded: `true`, `yes`, `on` or `1` (any case); "
            "anything else means false.",
        ),
    ),
    response=TaskJson,
    also={303: Redirect("The task succeeded: its result (the upload, or the email).")},
    errors=(NotFound,),
)
async def retrieve_task(call: Call) -> TaskJson | web.Response:
    """Retrieve a task; once it succeeded, 303 to its result unless `no_redirect`."""
    task = await TASKS.retrieve(call.rt, call.actor, call.id)
    no_redirect = call.query.get("no_redirect", "").strip().lower() in _TRUE
    if task["result_url"] is not None and not no_redirect:
        return web.Response(status=303, headers={"Location": task["result_url"]})
    return task
