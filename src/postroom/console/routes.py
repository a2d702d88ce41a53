"""The console's routes, and the wrappers every handler runs in: the session check (a browser
without one is sent to the login page), the CSRF check of forms, errors as HTML pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from postroom import __version__
from postroom.console import actions, pages
from postroom.console.render import error_page
from postroom.console.session import ACTOR, current_actor, runtime
from postroom.domain.access import Actor
from postroom.errors import PostroomError

ROUTE_PREFIX = "console."
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
View = Callable[[web.Request, Actor], Awaitable[web.StreamResponse]]


def guarded(view: View) -> Handler:
    """A page or action for logged-in users; errors render as an HTML page with their status."""

    async def handle(request: web.Request) -> web.StreamResponse:
        who = await current_actor(request)
        if who is None:
            if request.method in ("GET", "HEAD"):
                target = "" if request.path_qs == "/" else "?next=" + quote(request.path_qs)
                raise web.HTTPSeeOther("/login" + target)
            return error_page(request, 403, "Your session has ended; log in again.")
        request[ACTOR] = who
        try:
            return await view(request, who)
        except PostroomError as error:
            return error_page(request, error.status, error.detail)

    return handle


def public(handler: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PostroomError as error:
            return error_page(request, error.status, error.detail)

    return handle


def wants_html(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "").lower()
    return "text/html" in accept or "application/xhtml+xml" in accept


def api_index(request: web.Request) -> dict[str, Any]:
    base = runtime(request).urls.base
    return {
        "name": "Postroom",
        "version": __version__,
        "api": f"{base}/api/v1",
        "openapi": f"{base}/api/v1/openapi.json",
        "docs": f"{base}/api/docs",
        "login": f"{base}/api/v1/auth/login",
        "health": f"{base}/api/v1/health",
        "console": f"{base}/",
    }


_overview = guarded(pages.overview)


async def index(request: web.Request) -> web.StreamResponse:
    """`GET /`: the console's overview for a browser, a JSON index of the API for the rest."""
    if wants_html(request):
        response = await _overview(request)
    else:
        response = web.json_response(api_index(request))
    response.headers["Vary"] = "Accept"
    return response


def register(router: web.UrlDispatcher, static_dir: Path) -> None:
    def get(path: str, name: str, handler: Handler) -> None:
        router.add_get(path, handler, name=ROUTE_PREFIX + name)

    def post(path: str, name: str, handler: Handler) -> None:
        router.add_post(path, handler, name=ROUTE_PREFIX + name)

    get("/", "index", index)
    get("/login", "login", public(actions.show_login))
    post("/login", "login_submit", public(actions.submit_login))
    post("/logout", "logout", guarded(actions.logout))
    get("/mail", "mail", guarded(pages.mail))
    get("/uploads", "uploads", guarded(pages.uploads))
    get("/failed", "failed", guarded(pages.failed))
    post("/failed/retry", "retry", guarded(actions.retry))
    post("/annotations/{id}/delete", "delete_annotation", guarded(actions.delete_annotation))
    get("/documents/{id}", "document", guarded(pages.document))
    get("/documents/{id}/content", "document_content", guarded(pages.document_content))
    get("/hooks", "hooks", guarded(pages.hooks))
    router.add_static("/static/console", static_dir, name=ROUTE_PREFIX + "static")
