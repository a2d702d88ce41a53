"""Every state a Postroom record can be in, as types, and the one table of annotation transitions.

The values are the wire and column values of the Rossum reference (a `StrEnum` member *is* its
string: it compares, binds and serialises as one). Writers name states through these enums, never
as bare strings, so a typo is an import error rather than a silent mismatch.

`TRANSITIONS` is the annotation lifecycle: every status change — by a reviewer, the pipeline, an
export, a background duty — is checked against it by `domain.lifecycle`, which runs the guarded
`UPDATE … WHERE status IN (sources)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class AnnotationStatus(StrEnum):
    CREATED = "created"
    IMPORTING = "importing"
    FAILED_IMPORT = "failed_import"
    SPLIT = "split"
    TO_REVIEW = "to_review"
    REVIEWING = "reviewing"
    IN_WORKFLOW = "in_workflow"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    EXPORTING = "exporting"
    EXPORTED = "exported"
    FAILED_EXPORT = "failed_export"
    POSTPONED = "postponed"
    DELETED = "deleted"
    PURGED = "purged"


class QueueStatus(StrEnum):
    """A queue takes documents only while `active`; deletion runs requested → in progress."""

    ACTIVE = "active"
    DELETION_REQUESTED = "deletion_requested"
    DELETION_IN_PROGRESS = "deletion_in_progress"
    DELETION_FAILED = "deletion_failed"


class TaskType(StrEnum):
    """What an asynchronous task tracks: an upload's import, or an imported e-mail's."""

    UPLOAD_CREATED = "upload_created"
    EMAIL_IMPORTED = "email_imported"


class TaskStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class JobKind(StrEnum):
    """The pipeline's kinds of work (`pipeline.kinds` maps each to its handler)."""

    IMPORT = "import"
    EXPORT = "export"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class EmailType(StrEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class NotificationStatus(StrEnum):
    """What became of the notice an e-mail without a processable attachment asks for."""

    PENDING = "pending"
    SENT = "sent"
    NO_RELAY = "not_sent: no relay configured"
    DISABLED = "not_sent: disabled"
    NULL_SENDER = "not_sent: null sender"
    AUTO_SUBMITTED = "not_sent: auto-submitted"
    NO_RECIPIENT = "not_sent: no recipient"
    BOUNCE_SENDER = "not_sent: bounce sender"
    UNAUTHENTICATED = "not_sent: sender not authenticated"
    RATE_LIMITED = "not_sent: rate limited"


class AttachmentStatus(StrEnum):
    """Why a file of an e-mail was kept as a document without an annotation."""

    UNSUPPORTED_MIME_TYPE = "unsupported_mime_type"
    BROKEN_ENCODING = "broken_encoding"
    TOO_LARGE = "too_large"
    ZIP_INVALID = "zip_invalid"
    ZIP_ENCRYPTED = "zip_encrypted"
    ZIP_TOO_MANY_FILES = "zip_too_many_files"
    ZIP_TOO_LARGE = "zip_too_large"
    ZIP_BOMB = "zip_bomb"


A = AnnotationStatus

# Every allowed transition, source → targets. `purged` is terminal. A data-retention purge
# (queue.document_lifetime) may take any settled annotation to `purged`; the ones being worked
# on by a machine (importing, exporting) are purged once they settle. `reviewing → reviewing`:
# the reviewer who holds it starts it again (a reloaded page). A deleted annotation can be
# restored (to_review) until it is purged.
_REVIEWABLE = {A.TO_REVIEW, A.POSTPONED, A.CONFIRMED, A.EXPORTING, A.EXPORTED, A.REJECTED}
TRANSITIONS: Mapping[AnnotationStatus, frozenset[AnnotationStatus]] = {
    A.CREATED: frozenset({A.IMPORTING, A.DELETED, A.PURGED}),
    A.IMPORTING: frozenset(
        {A.TO_REVIEW, A.FAILED_IMPORT, A.SPLIT, A.CONFIRMED, A.EXPORTING, A.EXPORTED, A.DELETED}
    ),
    # failed_import → importing: an operator's retry (a new import job), never a client PATCH.
    A.FAILED_IMPORT: frozenset({A.IMPORTING, A.DELETED, A.PURGED}),
    A.SPLIT: frozenset({A.DELETED, A.PURGED}),
    A.TO_REVIEW: frozenset(
        _REVIEWABLE - {A.TO_REVIEW} | {A.REVIEWING, A.IN_WORKFLOW, A.SPLIT, A.DELETED, A.PURGED}
    ),
    A.REVIEWING: frozenset(
        _REVIEWABLE | {A.REVIEWING, A.IN_WORKFLOW, A.SPLIT, A.DELETED, A.PURGED}
    ),
    A.IN_WORKFLOW: frozenset(
        {A.TO_REVIEW, A.CONFIRMED, A.EXPORTING, A.EXPORTED, A.REJECTED, A.DELETED, A.PURGED}
    ),
    A.CONFIRMED: frozenset(_REVIEWABLE - {A.CONFIRMED} | {A.REVIEWING, A.DELETED, A.PURGED}),
    A.REJECTED: frozenset({A.REVIEWING, A.TO_REVIEW, A.POSTPONED, A.DELETED, A.PURGED}),
    A.EXPORTING: frozenset({A.EXPORTED, A.FAILED_EXPORT}),
    A.EXPORTED: frozenset({A.DELETED, A.PURGED}),
    A.FAILED_EXPORT: frozenset(
        {A.REVIEWING, A.TO_REVIEW, A.POSTPONED, A.EXPORTING, A.EXPORTED, A.DELETED, A.PURGED}
    ),
    A.POSTPONED: frozenset({A.REVIEWING, A.TO_REVIEW, A.REJECTED, A.DELETED, A.PURGED}),
    A.DELETED: frozenset({A.TO_REVIEW, A.PURGED}),
    A.PURGED: frozenset(),
}

# Targets a client may set with a bare `PATCH {"status": …}`. The others need their own action:
# reviewing (start: it takes a session), purged (purge_deleted: it wipes data), split (split),
# importing/created (only the intake creates them).
PATCH_TARGETS: frozenset[AnnotationStatus] = frozenset(
    {
        A.TO_REVIEW,
        A.POSTPONED,
        A.CONFIRMED,
        A.REJECTED,
        A.IN_WORKFLOW,
        A.EXPORTING,
        A.EXPORTED,
        A.FAILED_EXPORT,
        A.DELETED,
    }
)


def sources_of(target: AnnotationStatus) -> frozenset[AnnotationStatus]:
    """Every status an annotation may be moved to `target` from."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)
