"""The console's forms: log in, log out, retry failed annotations, delete an annotation. Every POST carries the CSRF
token (`session.require_csrf`, 403 without it); actions answer 303 to the page to show next."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from postroom.console.render import render
from postroom.console.session import (
    LOGIN_COOKIE,
    end_session,
    log_in,
    login_token,
    require_csrf,
    runtime,
    set_cookie,
    start_session,
)
from postroom.domain import operations, review
from postroom.domain.access import Actor
from postroom.errors import BadRequest, NotFound
from postroom.status import AnnotationStatus
from postroom.urls import digits

MAX_RETRY_IDS = 500


def see_other(location: str) -> web.Response:
    """303 to the page to show next (returned, so cookies set on it travel with it)."""
    return web.Response(status=303, headers={"Location": location})


def _safe_next(raw: str | None) -> str:
    """Only a path of this site (never `//host` or a URL) is followed after logging in."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/"


def login_form(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    token = login_token(request)
    response = render(
        request,
        "login.html",
        {"title": "Log in", "error": error, "next": _safe_next(request.query.get("next"))},
        status=status,
    )
    set_cookie(request, response, LOGIN_COOKIE, token)
    return response


async def show_login(request: web.Request) -> web.StreamResponse:
    return login_form(request)


async def submit_login(request: web.Request) -> web.StreamResponse:
    form = await require_csrf(request)
    username, password = form.get("username", ""), form.get("password", "")
    key = await log_in(request, username, password) if username and password else None
    if key is None:
        return login_form(request, error="Invalid username or password.", status=401)
    response = see_other(_safe_next(form.get("next")))
    start_session(request, response, key)
    return response


async def logout(request: web.Request, who: Actor) -> web.StreamResponse:
    await require_csrf(request)
    response = see_other("/login")
    await end_session(request, response)
    return response


async def retry(request: web.Request, who: Actor) -> web.StreamResponse:
    """Re-queue the failed annotations named by the form's `annotation` fields (one or many)."""
    await require_csrf(request)
    form = await request.post()
    raw = [v for v in form.getall("annotation", []) if isinstance(v, str)]
    if not raw or len(raw) > MAX_RETRY_IDS or not all(digits(v) and len(v) < 18 for v in raw):
        raise BadRequest(f"Select between 1 and {MAX_RETRY_IDS} failed annotations to retry.")
    done = await operations.retry(runtime(request), who, [int(v) for v in raw])
    summary = {
        "retried": ",".join(map(str, done.retried)),
        "skipped": ",".join(map(str, done.skipped)),
    }
    return see_other("/failed?" + urlencode({k: v for k, v in summary.items() if v}))


async def delete_annotation(request: web.Request, who: Actor) -> web.StreamResponse:
    """Delete one annotation (restorable until purged), as `POST /annotations/{id}/delete` does:
    annotators and up, in their queues; then back to its document's page."""
    await require_csrf(request)
    raw = request.match_info.get("id", "")
    if not digits(raw) or len(raw) > 18:
        raise NotFound("No such annotation.")
    form = await request.post()
    document = form.get("document")
    await review.move_to(runtime(request), who, int(raw), AnnotationStatus.DELETED)
    if isinstance(document, str) and digits(document) and len(document) < 19:
        return see_other(f"/documents/{document}?deleted={raw}")
    return see_other("/")
