"""The one exception tree of Postroom. Each leaf carries a stable `code` from the Rossum reference.

    PostroomError (500, "error")
     ├── BadRequest (400, "bad_request")
     ├── AuthenticationFailed (401, "authentication_failed")
     ├── AccessForbidden (403, "access_forbidden")
     ├── NotFound (404, "not_found")
     ├── MethodNotAllowed (405, "method_not_allowed")
     ├── RequestTimeout (408, "request_timeout")
     ├── Conflict (409, "conflict")
     │    └── ConflictStatus (409, "conflict_status")
     ├── PayloadTooLarge (413, "payload_too_large")
     ├── RateLimited (429, "rate_limited")
     ├── NotImplementedYet (501, "not_implemented")
     └── ServiceUnavailable (503, "service_unavailable")

Only two edge modules turn these into wire replies: `web.errors` (HTTP JSON bodies) and
`smtp.replies` (SMTP reply codes). Everything else raises them.
"""

from __future__ import annotations

from typing import Any


class PostroomError(Exception):
    status = 500
    code = "error"
    default_detail = "Server error."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, **self.extra}


class BadRequest(PostroomError):
    status = 400
    code = "bad_request"
    default_detail = "Bad Request."


class AuthenticationFailed(PostroomError):
    status = 401
    code = "authentication_failed"
    default_detail = "Invalid token."


class AccessForbidden(PostroomError):
    status = 403
    code = "access_forbidden"
    default_detail = "Access to the requested resource is forbidden."


class NotFound(PostroomError):
    status = 404
    code = "not_found"
    default_detail = "Not found."


class MethodNotAllowed(PostroomError):
    status = 405
    code = "method_not_allowed"
    default_detail = "Method not allowed."


class RequestTimeout(PostroomError):
    status = 408
    code = "request_timeout"
    default_detail = "Request timeout."


class Conflict(PostroomError):
    status = 409
    code = "conflict"
    default_detail = "Conflict."


class ConflictStatus(Conflict):
    code = "conflict_status"


class PayloadTooLarge(PostroomError):
    status = 413
    code = "payload_too_large"
    default_detail = "Payload Too Large."


class RateLimited(PostroomError):
    status = 429
    code = "rate_limited"
    default_detail = "Request was rate limited."

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        super().__init__(
            detail, url="https://rossum.app/api/docs/openapi/guides/overview/#rate-limiting"
        )
        self.retry_after = retry_after


class NotImplementedYet(PostroomError):
    status = 501
    code = "not_implemented"
    default_detail = "Not implemented yet."


class ServiceUnavailable(PostroomError):
    status = 503
    code = "service_unavailable"
    default_detail = "Service Unavailable."
