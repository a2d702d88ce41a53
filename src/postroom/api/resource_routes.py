"""The endpoints every resource collection has, declared once: list, retrieve, and for editable
resources create, replace (PUT), update (PATCH) and delete.

    resource_routes(routes, "/workspaces", WORKSPACES, WorkspaceJson)

declares `GET /workspaces`, `GET /workspaces/{id}`, `POST /workspaces`, `PUT`/`PATCH`/`DELETE
/workspaces/{id}` with their bodies, answers and errors (those the resource declares it can
raise), each calling the resource's one domain method. A module adds its other endpoints
(actions, sub-resources) beside them.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from postroom.api.pagination import envelope, page_request
from postroom.api.routing import Call, Handler, Routes
from postroom.domain.resources import EditableResource, Errors, Resource
from postroom.errors import AccessForbidden, NotFound, PostroomError


def resource_routes(
    routes: Routes,
    path: str,
    resource: Resource[Any],
    json: Any,
    *,
    id_pattern: str = "",
    edits: Collection[str] = ("POST", "PUT", "PATCH", "DELETE"),
    delete_errors: tuple[type[PostroomError], ...] = (),
    write_errors: tuple[type[PostroomError], ...] = (),
) -> None:
    """Declare the collection endpoints of `resource` under `path` (see the module docstring).

    `id_pattern` constrains `{id}` (`:[0-9]+` where other paths share the prefix); `edits` names
    the writing methods the resource offers; the errors add what its writes can refuse besides
    403, 404 and what the resource declares.
    """
    one = f"{path}/{{id{id_pattern}}}"
    noun = resource.noun.lower()
    plural = path.strip("/").replace("_", " ")

    async def list_all(call: Call) -> dict[str, Any]:
        page = await resource.list(call.rt, call.actor, call.query, page_request(call.query))
        return envelope(call.request, call.rt.urls.base, page)

    async def retrieve(call: Call) -> Any:
        return await resource.retrieve(call.rt, call.actor, call.id)

    reads = resource.read_errors
    routes.add(
        "GET",
        path,
        list_all,
        summary=f"List {plural}.",
        response=json,
        listing=resource.listing,
        errors=reads,
    )
    routes.add(
        "GET",
        one,
        retrieve,
        summary=f"Retrieve a {noun}.",
        response=json,
        errors=_errors(NotFound, *reads),
    )
    if not isinstance(resource, EditableResource):
        return
    editable: EditableResource[Any, Any] = resource
    model = editable.body
    writes: Errors = (AccessForbidden, *reads, *write_errors)

    async def create(call: Call) -> Any:
        return await editable.create(call.rt, call.actor, call.body)

    async def replace(call: Call) -> Any:
        return await editable.update(call.rt, call.actor, call.id, call.body, partial=False)

    async def update(call: Call) -> Any:
        return await editable.update(call.rt, call.actor, call.id, call.body, partial=True)

    async def delete(call: Call) -> None:
        await editable.delete(call.rt, call.actor, call.id)

    declared: dict[str, tuple[str, Handler, dict[str, Any]]] = {
        "POST": (
            path,
            create,
            {
                "summary": f"Create a {noun}.",
                "body": model,
                "status": 201,
                "response": json,
                "errors": _errors(*writes, *editable.create_errors),
                "idempotent": True,
            },
        ),
        "PUT": (
            one,
            replace,
            {
                "summary": f"Replace a {noun}.",
                "body": model,
                "response": json,
                "errors": _errors(NotFound, *writes, *editable.update_errors),
            },
        ),
        "PATCH": (
            one,
            update,
            {
                "summary": f"Update a {noun}.",
                "body": model,
                "response": json,
                "errors": _errors(NotFound, *writes, *editable.update_errors),
            },
        ),
        "DELETE": (
            one,
            delete,
            {
                "summary": f"Delete a {noun}.",
                "status": 204,
                "errors": _errors(
                    NotFound, AccessForbidden, *reads, *editable.delete_errors, *delete_errors
                ),
            },
        ),
    }
    for method in edits:
        where, handler, shape = declared[method]
        routes.add(method, where, handler, **shape)


def _errors(*errors: type[PostroomError]) -> Errors:
    return tuple(dict.fromkeys(errors))
