"""The one exception tree of Postroom. Each leaf carries a stable `code` from the Rossum reference.

    PostroomError (500, "error")
     ├── BadRequest (400, "bad_request")
     │    └── UnreadableMessage (400, "bad_request"): a mail's MIME structure beyond the limits
     ├── AuthenticationFailed (401, "authentication_failed")
     ├── AccessForbidden (403, "access_forbidden")
     ├── NotFound (404, "not_found")
     ├── RequestTimeout (408, "request_timeout")
     ├── Conflict (409, "conflict_status"): every 409 carries the reference's one code
     │    ├── ConflictStatus (409, "conflict_status")
     │    └── ConcurrentChange (409, "conflict_status"): a uniqueness race lost to another request
     ├── PayloadTooLarge (413, "payload_too_large")
     ├── Unprocessable (422, "unprocessable_entity")
     ├── RateLimited (429, "rate_limited")
     ├── InsufficientStorage (507, "insufficient_storage")
     └── ServiceUnavailable (503, "service_unavailable")

Only two edge modules turn these into wire replies: `api.middleware.errors` (HTTP JSON bodies)
and `smtp.replies` (SMTP reply codes). Everything else raises them.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PostroomError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "error"
    default_detail: ClassVar[str] = "Server error."

    def __init_subclass__(cls, status: int = 0, code: str = "", detail: str = "") -> None:
        super().__init_subclass__()
        cls.status = status or cls.status
        cls.code = code or cls.code
        cls.default_detail = detail or cls.default_detail

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "code": self.code, **self.extra}


class BadRequest(PostroomError, status=400, code="bad_request", detail="Bad Request."):
    """Bad request: the detail names the field, parameter or limit."""


class UnreadableMessage(
    BadRequest, detail="The message's MIME structure is beyond Postroom's limits."
):
    """A message whose MIME structure exceeds a limit (nesting depth, number of parts): refused
    for good (SMTP 554 5.6.0), never retried."""


class AuthenticationFailed(
    PostroomError, status=401, code="authentication_failed", detail="Invalid token."
):
    """Missing, invalid or expired credentials."""


class AccessForbidden(
    PostroomError,
    status=403,
    code="access_forbidden",
    detail="Access to the requested resource is forbidden.",
):
    """Authenticated, but the role does not allow this."""


class NotFound(PostroomError, status=404, code="not_found", detail="Not found."):
    """No such object (or not visible to this user)."""


class RequestTimeout(PostroomError, status=408, code="request_timeout", detail="Request timeout."):
    """The request body stalled."""


class Conflict(PostroomError, status=409, code="conflict_status", detail="Conflict."):
    """Conflict with the object's state or with a concurrent change."""


class ConflictStatus(Conflict, code="conflict_status"):
    """The object's status does not allow this (the detail names the status)."""


class ConcurrentChange(
    Conflict, detail="The request conflicts with a change made at the same time; retry it."
):
    """A uniqueness constraint refused a write that the checks before it could not foresee
    (two requests at once): the transaction was rolled back, nothing was half-written."""


class PayloadTooLarge(
    PostroomError, status=413, code="payload_too_large", detail="Payload Too Large."
):
    """Payload too large: the detail states the limit."""


class Unprocessable(
    PostroomError, status=422, code="unprocessable_entity", detail="Unprocessable request."
):
    """Well-formed, but it contradicts an earlier request (an `Idempotency-Key` sent again with
    another request)."""


class RateLimited(
    PostroomError, status=429, code="rate_limited", detail="Request was rate limited."
):
    """Rate limited: retry after Retry-After seconds."""

    def __init__(self, retry_after: float, detail: str | None = None) -> None:
        super().__init__(
            detail, url="https://rossum.app/api/docs/openapi/guides/overview/#rate-limiting"
        )
        self.retry_after = retry_after


class InsufficientStorage(
    PostroomError,
    status=507,
    code="insufficient_storage",
    detail="The server's storage is full; nothing was stored. Try again later.",
):
    """The disk (or the database) is full: nothing was stored; retry later (SMTP 452)."""


class ServiceUnavailable(
    PostroomError, status=503, code="service_unavailable", detail="Service Unavailable."
):
    """Temporarily unable to store or serve the request; retry later."""
