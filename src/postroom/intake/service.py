"""The intake service of one process: every file that comes in — posted over HTTP or mailed to
an inbox — comes in through it, along one path.

    channel        HTTP upload / POST /documents         SMTP DATA / POST /emails/import
    receive        intake.parts (streamed, limits)       spooled by the edge (smtp.session)
    name           intake.names.clean_file_name          intake.mime → names.attachment_name
    store          intake.storing.store (fsync + sniff, one worker-thread trip per file)
    queue rule     intake.accept.admit (+ check_uploader before the body is read)
    type rule      intake.accept.judge
    records        intake.accept.accept_files            intake.mail_records (email + accept_files)
    commit         db.commits.group_commit: one unit per request / message
    then           wake the workers, count; only then does the edge answer 201/202/250

The edges (`api`, `smtp`) keep only their protocol: they hand over a body (`intake.parts.Body`)
or a spooled message (`mail_records.RawMessage`) with who sent it, and render the answer.
"""

from __future__ import annotations

import logging

from postroom import logs
from postroom.db.commits import group_commit
from postroom.domain import uploads
from postroom.domain.access import Actor
from postroom.domain.documents import DocumentJson
from postroom.domain.tasks import TaskUrlJson
from postroom.intake import mail_import
from postroom.intake.accept import insert_task
from postroom.intake.mail import (
    ByteBudget,
    count_delivery,
    durable_parts,
    forget_raw,
    stored_files,
)
from postroom.intake.mail_auth import Authenticator, MailDeferred, MailRefused, admitted
from postroom.intake.mail_journal import MailJournal, file_summary
from postroom.intake.mail_records import Delivered, IncomingMail, Message, write_mail
from postroom.intake.notify import Notifier
from postroom.intake.parts import Body
from postroom.intake.recipients import Lookup, lookup
from postroom.intake.storing import forget_new
from postroom.intake.uploads import receive_document, receive_upload
from postroom.runtime import Runtime
from postroom.status import TaskStatus, TaskType

log = logging.getLogger("postroom.smtp")


class Intake:
    def __init__(self, rt: Runtime, notifier: Notifier) -> None:
        self.rt = rt
        self.notifier = notifier
        self.journal = MailJournal(rt)
        # Several large messages in flight parse a few at a time: memory stays under this.
        self.budget = ByteBudget(max(3 * rt.settings.smtp.max_message_bytes, 64 << 20))
        self.authenticator = Authenticator(rt.settings.smtp)

    def close(self) -> None:
        """Stop the worker threads of the mail authentication checks."""
        self.authenticator.close()

    async def upload_to_queue(
        self, who: Actor, queue_id: int, body: Body
    ) -> uploads.QueueUploadJson:
        """`POST /queues/{id}/upload`: one (annotation, document) pair per file, no task."""
        accepted = await receive_upload(self.rt, who, queue_id, body, task_type=None)
        results = uploads.results(self.rt.urls, accepted.documents)
        first = results[0]
        return {
            "results": results,
            "annotation": first["annotation"],
            "document": first["document"],
        }

    async def create_upload(
        self, who: Actor, queue_id: int, body: Body, *, reject_identical: bool
    ) -> uploads.UploadTaskJson:
        """`POST /uploads`: the task to follow, and the pairs (the records exist already)."""
        accepted = await receive_upload(
            self.rt,
            who,
            queue_id,
            body,
            task_type=TaskType.UPLOAD_CREATED,
            reject_identical=reject_identical,
        )
        assert accepted.task_id is not None
        urls = self.rt.urls
        return {
            "url": urls.to("tasks", accepted.task_id),
            "results": uploads.results(urls, accepted.documents),
        }

    async def create_document(self, who: Actor, body: Body) -> DocumentJson:
        """`POST /documents`: one document from one file; no upload, no annotation."""
        return await receive_document(self.rt, who, body)

    async def import_email(self, who: Actor, body: Body) -> TaskUrlJson:
        """`POST /emails/import`: the message delivered like mail; its `email_imported` task.

        A resent message already stored gets a finished task pointing at the stored email."""
        who.require_admin()
        delivered = await self.deliver(await mail_import.receive_mail(self.rt, who, body))
        if delivered.task_ids:
            task_id = delivered.task_ids[0]
        else:
            task_id = await group_commit(self.rt.db).run(
                lambda conn: insert_task(
                    conn,
                    TaskType.EMAIL_IMPORTED,
                    {
                        "organization_id": who.organization_id,
                        "creator_id": who.user_id,
                        "email_id": delivered.duplicate_ids[0],
                    },
                    status=TaskStatus.SUCCEEDED,
                )
            )
        return {"url": self.rt.urls.to("tasks", task_id)}

    async def recipient(self, address: str) -> Lookup:
        """SMTP `RCPT TO`: the inbox the address names, if its queue takes mail."""
        async with self.rt.db.reading() as conn:
            return await lookup(conn, address)

    async def deliver(self, mail: IncomingMail) -> Delivered:
        """Store one message for its recipient inboxes (raises on any failure: answer 451).

        Its authentication comes first: an inbox that drops mail failing DMARC leaves it out,
        and when none is left (`MailRefused`, `MailDeferred`) nothing is stored."""
        try:
            await self._authenticate(mail)
        except (MailRefused, MailDeferred) as refused:
            if mail.raw.pending is not None:
                await mail.raw.pending.abort()
            logs.event(
                log,
                "mail refused by dmarc_check_action",
                verdict=str(refused).replace("\n", ""),
                inboxes=",".join(t.inbox_email for t in mail.targets),
            )
            raise
        parsed, kept = await durable_parts(self.rt.blobs, self.budget, mail.raw)
        for name, why in parsed.skipped:
            log.info("email attachment %r not kept: %s", name, why)
        message = Message(mail, parsed, kept)
        relay = self.rt.settings.smtp.relay_host
        try:
            delivered, notices = await group_commit(self.rt.db).run(
                lambda conn: write_mail(conn, message, relay, self.notifier.allow)
            )
        except BaseException:
            # Nothing of a message whose records failed stays behind (disk full, say).
            await forget_new(self.rt.blobs, stored_files(kept))
            await forget_raw(self.rt.blobs, mail.raw)
            raise
        delivered.files = file_summary(kept, parsed.skipped)
        self.rt.jobs_available.set()
        for notice in notices:
            self.notifier.schedule(notice)
        count_delivery(kept, delivered)
        return delivered

    async def _authenticate(self, mail: IncomingMail) -> None:
        """Set the mail's verdict and keep only the inboxes its `dmarc_check_action` admits.

        Mail posted to `POST /emails/import` is checked too (no SPF: no connecting address)
        and its verdict recorded, but an admin's import is never dropped."""
        raw, blobs = mail.raw, self.rt.blobs

        def read() -> bytes:
            if raw.data is not None:
                return raw.data
            if raw.pending is not None:
                return raw.pending.read_blocking()
            return blobs.path_of(raw.key).read_bytes()

        async with self.budget.reserve(2 * raw.size):
            mail.verdict = await self.authenticator.verify(
                read,
                ip=mail.client_ip,
                mail_from="" if mail.mail_from == "<>" else mail.mail_from,
                helo=mail.helo,
            )
        if mail.client_ip is not None:
            mail.targets = admitted(mail.verdict, mail.targets)
