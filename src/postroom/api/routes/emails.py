"""`/emails`: list, counts, retrieve, raw content, PATCH, import; and
`/queues/{id}/suggested_recipients`."""

from __future__ import annotations

from postroom.api.downloads import content_route
from postroom.api.keys import intake
from postroom.api.resource_routes import resource_routes
from postroom.api.routes.uploads import JSON_OBJECT, values_schema
from postroom.api.routing import Call, Download, Files, Param, Routes
from postroom.api.upload_body import RequestBody
from postroom.domain import email_reports
from postroom.domain.email_reports import EmailCountsJson, SuggestionBody, SuggestionsJson
from postroom.domain.emails import EMAILS, EmailJson
from postroom.domain.tasks import TaskUrlJson
from postroom.errors import (
    AccessForbidden,
    ConflictStatus,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
)

routes = Routes()


# Before `/emails/{id}` (declared by `resource_routes`), which would take `counts` for an id.
@routes.get(
    "/emails/counts",
    query=tuple(
        Param(f.param, dict(f.value_schema()), "Filter, as for the list.")
        for f in EMAILS.listing.filters
    ),
    response=EmailCountsJson,
)
async def email_counts(call: Call) -> EmailCountsJson:
    """Counts of incoming emails by the fate of their attachments (the list's filters apply)."""
    return await email_reports.email_counts(call.rt, call.actor, call.query)


resource_routes(routes, "/emails", EMAILS, EmailJson, edits=("PATCH",))


content_route(
    routes, "/emails", EMAILS, Download(("message/rfc822",), "The raw message exactly as received.")
)


@routes.post(
    "/emails/import",
    body=Files(
        fields={
            "recipient": "The address of the inbox the message is delivered to.",
            "metadata": "A JSON object: the metadata of every annotation created.",
            "values": "A JSON object: `emails_import:<key>` values offered to the datapoints.",
        },
        required=("recipient",),
        file_field="raw_message",
        raw=False,
        single=True,
        schemas={"metadata": JSON_OBJECT, "values": values_schema("^emails_import:.")},
    ),
    status=202,
    idempotent=True,
    response=TaskUrlJson,
    errors=(
        AccessForbidden,
        ConflictStatus,
        RequestTimeout,
        PayloadTooLarge,
        ServiceUnavailable,
        InsufficientStorage,
    ),
)
async def import_email(call: Call) -> TaskUrlJson:
    """Import a raw message (admins): 202 with an `email_imported` task once it is stored."""
    return await intake(call.request).import_email(call.actor, RequestBody(call.request))


@routes.post(
    "/queues/{id}/suggested_recipients",
    body=SuggestionBody,
    response=SuggestionsJson,
    errors=(NotFound,),
)
async def suggested_recipients(call: Call) -> SuggestionsJson:
    """The senders of the emails behind the given annotations and email threads."""
    return await email_reports.suggested_recipients(call.rt, call.actor, call.id, call.body)
