"""HTTP edge of the error model: every failure becomes `{"detail", "code"}` JSON, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from postroom.api.keys import ERROR_CODE
from postroom.errors import PostroomError, RateLimited, RequestTimeout

log = logging.getLogger("postroom.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_failed",
    403: "access_forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict_status",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(error: PostroomError) -> web.Response:
    response = web.json_response(error.body(), status=error.status)
    response[ERROR_CODE] = error.code
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(max(1, round(error.retry_after + 0.5)))
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api", Basic realm="api"'
    return response


async def answer_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send `response` now and close the connection at once (no lingering read of the rest of
    the body): for a client whose body did not arrive in time."""
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()  # after the buffered answer is written
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestTimeout as error:
        return await answer_and_close(request, error_response(error))
    except PostroomError as error:
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = "Not found." if exc.status == 404 else (exc.reason or "Error.")
        if exc.status == 405:
            detail = f'Method "{request.method}" not allowed.'
        if exc.status == 413:
            detail = f"Request body is larger than the limit ({exc.text})."
        body = {"detail": detail, "code": _HTTP_CODES.get(exc.status, "error")}
        response = web.json_response(body, status=exc.status, headers=_kept_headers(exc))
        response[ERROR_CODE] = body["code"]
        return response
    except ConnectionResetError:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = web.json_response({"detail": "Server error.", "code": "error"}, status=500)
        response[ERROR_CODE] = "error"
        return response


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
