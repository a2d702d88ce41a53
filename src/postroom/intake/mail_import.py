"""`POST /emails/import`: a raw message posted over HTTP (admins), delivered like SMTP mail.

The form holds the message as a file part (`raw_message`), the `recipient` inbox address and
optional `metadata` and `values` (`emails_import:*` keys, offered to datapoints). The message is
streamed into the blob store under the SMTP size limit and made durable; the recipient must be an
inbox of the caller's organization whose queue takes documents.
"""

from __future__ import annotations

from postroom.domain.access import Actor
from postroom.errors import BadRequest, ConflictStatus, PayloadTooLarge
from postroom.intake import parts
from postroom.intake.mail_records import IncomingMail, RawMessage
from postroom.intake.parts import Body, BodyRules, ReceivedBody
from postroom.intake.recipients import Target, lookup
from postroom.runtime import Runtime
from postroom.status import TaskType

IMPORT_PREFIX = "emails_import:"
MAX_RECIPIENT_BYTES = 1024


def _rules(rt: Runtime) -> BodyRules:
    limit = rt.settings.smtp.max_message_bytes
    metadata = rt.settings.limits.max_metadata_bytes
    return BodyRules(
        # The raw message may use the whole SMTP limit; the form fields come on top.
        max_body_bytes=limit + parts.MAX_VALUES_BYTES + metadata + 65536,
        # `raw_message` is a file part (curl -F raw_message=@x.eml, the SDK): streamed, not a field.
        field_limits={
            "recipient": MAX_RECIPIENT_BYTES,
            "metadata": metadata,
            "values": parts.MAX_VALUES_BYTES,
        },
        idle_timeout_s=rt.settings.limits.upload_idle_timeout_s,
        min_bytes_per_s=rt.settings.limits.upload_min_bytes_per_s,
    )


def _import_key(key: str) -> str:
    if not key.startswith(IMPORT_PREFIX) or key == IMPORT_PREFIX:
        raise BadRequest(f"values: key {key!r} must start with {IMPORT_PREFIX!r}.")
    return key


async def _target(rt: Runtime, who: Actor, body: ReceivedBody) -> Target:
    recipient = (body.fields.get("recipient") or "").strip()
    if not recipient:
        raise BadRequest("recipient: the address of an inbox is required.")
    async with rt.db.reading() as conn:
        found = await lookup(conn, recipient)
    if found.queue_status is not None and found.target is None:
        raise ConflictStatus(
            f"recipient: the queue of inbox {recipient} does not accept documents while its "
            f"status is {found.queue_status}."
        )
    if found.target is None or found.target.organization_id != who.organization_id:
        raise BadRequest(f"recipient: no inbox with the address {recipient!r}.")
    return found.target


async def _raw_message(rt: Runtime, body: ReceivedBody) -> RawMessage:
    """The raw message (the one file part) as a durable blob."""
    if len(body.files) != 1:
        raise BadRequest("raw_message: exactly one raw message (a file part) is required.")
    writer = body.files[0].writer
    if writer.size == 0:
        raise BadRequest("raw_message: the message is empty.")
    limit = rt.settings.smtp.max_message_bytes
    if writer.size > limit:
        raise PayloadTooLarge(
            f"raw_message: larger than the limit of {limit} bytes (smtp.max_message_bytes)."
        )
    return RawMessage(await writer.commit(), writer.size)


async def receive_mail(rt: Runtime, who: Actor, body: Body) -> IncomingMail:
    """The posted message, durable, with its recipient and what the form adds to it."""
    received = await parts.receive_body(body, rt.blobs, _rules(rt))
    try:
        metadata = parts.json_object_field(received, "metadata")
        values = parts.values_field(received, _import_key)
        target = await _target(rt, who, received)
        raw = await _raw_message(rt, received)
    except BaseException:
        await received.discard_quietly()
        raise
    return IncomingMail(
        raw=raw,
        mail_from="",
        targets=[target],
        creator_id=who.user_id,
        metadata=metadata,
        values=values,
        task_type=TaskType.EMAIL_IMPORTED,
    )
