"""The tables of every record Postroom keeps. One `metadata`, used by Alembic and the code alike.

Rossum objects map one-to-one to tables; relations that Rossum shows as URL lists are either a
foreign key on the child (document.upload_id → upload.documents) or an association table
(queue_users, queue_hooks). `jobs` is the pipeline's work list; `duty_leases` lets several
processes agree which one runs a background duty; `idempotency_keys` remembers the first answer
to a create sent with an `Idempotency-Key`.

Ids are never reused, on either database: an object's URL names it for good, even after it is
deleted. PostgreSQL sequences never hand out a number twice; on SQLite every table with an `id`
is `INTEGER PRIMARY KEY AUTOINCREMENT` (`sqlite_autoincrement`), which never reuses the id of a
deleted row (a plain rowid table reuses the largest one).
"""

import sqlalchemy as sa

from postroom.db.columns import JSONType, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _fk(
    name: str, target: str, *, nullable: bool = True, ondelete: str = "SET NULL"
) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


def _json(name: str, *, default: object) -> sa.Column[object]:
    return sa.Column(name, JSONType, nullable=default is None, default=default)


def _ts(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, UTCDateTime(), nullable=nullable)


organizations = sa.Table(
    "organizations",
    metadata,
    _id(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("is_trial", sa.Boolean, nullable=False, default=False),
    _ts("created_at", nullable=False),
    _ts("trial_expires_at"),
    _json("ui_settings", default=dict),
    _json("metadata", default=dict),
    sqlite_autoincrement=True,
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("email", sa.String(254), nullable=False, default=""),
    sa.Column("first_name", sa.String(150), nullable=False, default=""),
    sa.Column("last_name", sa.String(150), nullable=False, default=""),
    sa.Column("password_hash", sa.String(255), nullable=False, default=""),
    sa.Column("role", sa.String(40), nullable=False, default="annotator"),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
    # Soft deletion (DELETE /users/{id}): the row stays so references keep resolving.
    sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    sa.Column("phone_number", sa.String(40)),
    _ts("date_joined", nullable=False),
    _ts("last_login"),
    _json("ui_settings", default=dict),
    _json("metadata", default=dict),
    sqlite_autoincrement=True,
)

tokens = sa.Table(
    "tokens",
    metadata,
    # sha256 of the key: a leaked database does not leak usable tokens.
    sa.Column("key_hash", sa.String(64), primary_key=True),
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=False),
    sa.Index("ix_tokens_user_id", "user_id"),
)

workspaces = sa.Table(
    "workspaces",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("autopilot", sa.Boolean, nullable=False, default=False),
    _json("metadata", default=dict),
    _ts("created_at", nullable=False),
    sqlite_autoincrement=True,
)

schemas = sa.Table(
    "schemas",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    _json("content", default=list),
    _json("metadata", default=dict),
    _fk("modified_by_id", "users.id"),
    _ts("modified_at"),
    sqlite_autoincrement=True,
)

inboxes = sa.Table(
    "inboxes",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    # Stored lower-cased: RCPT TO matching is case-insensitive.
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("email_prefix", sa.String(57), nullable=False),
    sa.Column("bounce_email_to", sa.String(254)),
    sa.Column("bounce_unprocessable_attachments", sa.Boolean, nullable=False, default=False),
    sa.Column("bounce_postponed_annotations", sa.Boolean, nullable=False, default=False),
    sa.Column("bounce_deleted_annotations", sa.Boolean, nullable=False, default=False),
    sa.Column("bounce_email_with_no_attachments", sa.Boolean, nullable=False, default=True),
    _json("filters", default=dict),
    sa.Column("dmarc_check_action", sa.String(20), nullable=False, default="accept"),
    _json("metadata", default=dict),
    _fk("modified_by_id", "users.id"),
    _ts("modified_at"),
    sqlite_autoincrement=True,
)

queues = sa.Table(
    "queues",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    _fk("workspace_id", "workspaces.id"),
    _fk("schema_id", "schemas.id", nullable=False, ondelete="RESTRICT"),
    _fk("inbox_id", "inboxes.id"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("connector", sa.String(1000)),
    sa.Column("session_timeout", sa.String(32), nullable=False, default="01:00:00"),
    sa.Column("rir_url", sa.String(1000)),
    _json("rir_params", default=None),
    sa.Column("dedicated_engine", sa.String(1000)),
    sa.Column("generic_engine", sa.String(1000)),
    # The `engine` of POST /queues/from_template (stored and returned, never run).
    sa.Column("engine", sa.String(1000)),
    sa.Column("default_score_threshold", sa.Float, nullable=False, default=0.8),
    sa.Column("automation_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("automation_level", sa.String(32), nullable=False, default="never"),
    sa.Column("locale", sa.String(32), nullable=False, default="en_GB"),
    _json("metadata", default=dict),
    sa.Column("use_confirmed_state", sa.Boolean, nullable=False, default=False),
    sa.Column("document_lifetime", sa.String(40)),
    sa.Column("status", sa.String(32), nullable=False, default="active"),
    _ts("delete_after"),
    _json("settings", default=dict),
    _json("workflows", default=list),
    sa.Column("training_enabled", sa.Boolean, nullable=False, default=True),
    _fk("modified_by_id", "users.id"),
    _ts("modified_at"),
    _ts("created_at", nullable=False),
    sa.Index("ix_queues_status_delete_after", "status", "delete_after"),
    # An inbox feeds one queue: enforced here too, so concurrent changes cannot share one.
    sa.UniqueConstraint("inbox_id"),
    sqlite_autoincrement=True,
)

queue_users = sa.Table(
    "queue_users",
    metadata,
    _fk("queue_id", "queues.id", nullable=False, ondelete="CASCADE"),
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("queue_id", "user_id"),
    sa.Index("ix_queue_users_user_id", "user_id"),
)

hooks = sa.Table(
    "hooks",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(40), nullable=False, default="webhook"),
    _json("events", default=list),
    _json("config", default=dict),
    _json("settings", default=dict),
    _json("sideload", default=list),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    _json("metadata", default=dict),
    sa.Column("description", sa.Text, nullable=False, default=""),
    # Ids of hooks that must run before this one (shown as URLs).
    _json("run_after", default=list),
    _json("test", default=dict),
    _fk("token_owner_id", "users.id"),
    sa.Column("token_lifetime_s", sa.Integer),
    _fk("created_by_id", "users.id"),
    _ts("created_at"),
    _fk("modified_by_id", "users.id"),
    _ts("modified_at"),
    sqlite_autoincrement=True,
)

queue_hooks = sa.Table(
    "queue_hooks",
    metadata,
    _fk("queue_id", "queues.id", nullable=False, ondelete="CASCADE"),
    _fk("hook_id", "hooks.id", nullable=False, ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("queue_id", "hook_id"),
)

emails = sa.Table(
    "emails",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    _fk("queue_id", "queues.id", ondelete="CASCADE"),
    _fk("inbox_id", "inboxes.id"),
    _fk("parent_id", "emails.id"),
    # The user who imported it through POST /emails/import; null for mail received over SMTP.
    _fk("creator_id", "users.id"),
    sa.Column("type", sa.String(20), nullable=False, default="incoming"),
    sa.Column("subject", sa.Text),
    sa.Column("from_email", sa.String(512), nullable=False, default=""),
    sa.Column("from_name", sa.String(512), nullable=False, default=""),
    _json("to", default=list),
    _json("cc", default=list),
    _json("bcc", default=list),
    sa.Column("body_text_plain", sa.Text),
    sa.Column("body_text_html", sa.Text),
    sa.Column("message_id", sa.String(998)),
    # The earlier email of this inbox with the same Message-ID and sender but other bytes: this
    # one is flagged (a tampered or replayed copy, or a sender reusing ids), not merged.
    sa.Column("message_id_conflict_id", sa.Integer),
    sa.Column("raw_blob", sa.String(128)),
    sa.Column("raw_sha256", sa.String(64)),
    _json("labels", default=list),
    _json("metadata", default=dict),
    sa.Column("filtered_reason", sa.String(255)),
    sa.Column("notification_status", sa.String(64)),
    # The SPF/DKIM/DMARC verdict as an Authentication-Results text (RFC 8601).
    sa.Column("authentication_results", sa.Text),
    _ts("created_at", nullable=False),
    sa.Index("ix_emails_queue_id_created_at", "queue_id", "created_at"),
    # A 250 lost on the wire makes the client resend: the same message is stored once per inbox.
    sa.Index("ix_emails_dedupe", "inbox_id", "message_id", "raw_sha256"),
    sqlite_autoincrement=True,
)

uploads = sa.Table(
    "uploads",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    _fk("queue_id", "queues.id", ondelete="CASCADE"),
    _fk("creator_id", "users.id"),
    _fk("email_id", "emails.id", ondelete="CASCADE"),
    _json("metadata", default=dict),
    _json("values", default=dict),
    _ts("created_at", nullable=False),
    sqlite_autoincrement=True,
)

documents = sa.Table(
    "documents",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    _fk("upload_id", "uploads.id", ondelete="CASCADE"),
    _fk("email_id", "emails.id", ondelete="CASCADE"),
    _fk("parent_id", "documents.id"),
    _fk("creator_id", "users.id"),
    # Content-addressed blob key (sha256 hex); null once purged.
    sa.Column("s3_name", sa.String(128)),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False, default=0),
    sa.Column("mime_type", sa.String(255), nullable=False),
    sa.Column("original_file_name", sa.String(1024), nullable=False),
    sa.Column("attachment_status", sa.String(64)),
    _json("metadata", default=dict),
    _ts("arrived_at", nullable=False),
    _ts("created_at", nullable=False),
    sa.Index("ix_documents_sha256", "organization_id", "sha256"),
    sa.Index("ix_documents_upload_id", "upload_id"),
    sa.Index("ix_documents_email_id", "email_id"),
    sqlite_autoincrement=True,
)

annotations = sa.Table(
    "annotations",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    _fk("queue_id", "queues.id", nullable=False, ondelete="CASCADE"),
    _fk("document_id", "documents.id", nullable=False, ondelete="CASCADE"),
    _fk("schema_id", "schemas.id", nullable=False, ondelete="RESTRICT"),
    _fk("upload_id", "uploads.id", ondelete="CASCADE"),
    _fk("email_id", "emails.id"),
    _fk("creator_id", "users.id"),
    sa.Column("status", sa.String(32), nullable=False, default="importing"),
    # Where `start` took it from, so `cancel` can put it back.
    sa.Column("previous_status", sa.String(32)),
    _json("metadata", default=dict),
    _json("content", default=list),
    _json("messages", default=list),
    _json("pages", default=list),
    sa.Column("page_count", sa.Integer),
    sa.Column("automated", sa.Boolean, nullable=False, default=False),
    sa.Column("note", sa.Text),
    _ts("arrived_at", nullable=False),
    _ts("created_at", nullable=False),
    _ts("modified_at"),
    _fk("modifier_id", "users.id"),
    _fk("modified_by_id", "users.id"),
    _ts("assigned_at"),
    _ts("confirmed_at"),
    _fk("confirmed_by_id", "users.id"),
    _ts("exported_at"),
    _fk("exported_by_id", "users.id"),
    _ts("export_failed_at"),
    _ts("deleted_at"),
    _fk("deleted_by_id", "users.id"),
    _ts("rejected_at"),
    _fk("rejected_by_id", "users.id"),
    _ts("purged_at"),
    _fk("purged_by_id", "users.id"),
    sa.Index("ix_annotations_queue_id_status", "queue_id", "status"),
    # Export walks a queue's annotations by id in batches (keyset): without it, each batch
    # re-sorts the whole queue.
    sa.Index("ix_annotations_queue_id_id", "queue_id", "id"),
    sa.Index("ix_annotations_document_id", "document_id"),
    sa.Index("ix_annotations_upload_id", "upload_id"),
    sa.Index("ix_annotations_status_modified_at", "status", "modified_at"),
    sqlite_autoincrement=True,
)

tasks = sa.Table(
    "tasks",
    metadata,
    _id(),
    _fk("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, default="running"),
    sa.Column("detail", sa.Text),
    _fk("upload_id", "uploads.id", ondelete="CASCADE"),
    _fk("email_id", "emails.id", ondelete="CASCADE"),
    _fk("creator_id", "users.id"),
    _json("content", default=dict),
    _ts("created_at", nullable=False),
    _ts("expires_at", nullable=False),
    sa.Index("ix_tasks_upload_id", "upload_id"),
    sqlite_autoincrement=True,
)

jobs = sa.Table(
    "jobs",
    metadata,
    _id(),
    sa.Column("kind", sa.String(40), nullable=False),
    _fk("annotation_id", "annotations.id", ondelete="CASCADE"),
    _json("payload", default=dict),
    # queued → running → done | failed (a running job whose lease expired is claimable again)
    sa.Column("status", sa.String(16), nullable=False, default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    _ts("run_after", nullable=False),
    _ts("lease_until"),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("last_error", sa.Text),
    _ts("created_at", nullable=False),
    _ts("finished_at"),
    sa.Index("ix_jobs_status_run_after", "status", "run_after"),
    sa.Index("ix_jobs_annotation_id", "annotation_id"),
    sqlite_autoincrement=True,
)

duty_leases = sa.Table(
    "duty_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    _ts("lease_until", nullable=False),
)

# One row per SMTP transaction (MAIL … DATA, or refused on the way): what the sender was answered.
# Written after the reply by the SMTP edge, detached from the delivery (a lost row never loses
# mail); read by the operator console's mail log.
mail_log = sa.Table(
    "mail_log",
    metadata,
    _id(),
    _ts("started_at", nullable=False),
    _ts("finished_at", nullable=False),
    sa.Column("client_address", sa.String(64), nullable=False, default=""),
    sa.Column("helo", sa.String(255), nullable=False, default=""),
    sa.Column("mail_from", sa.String(512), nullable=False, default=""),
    # [{"address", "reply"}]: every RCPT, with the reply it got.
    _json("recipients", default=list),
    sa.Column("size", sa.BigInteger),
    sa.Column("reply_code", sa.Integer),
    sa.Column("reply_text", sa.String(512), nullable=False, default=""),
    # The first accepted recipient's queue (null when none was accepted).
    _fk("queue_id", "queues.id"),
    _json("email_ids", default=list),
    # [{"name", "kept", "status"}]: each file of the message, kept (status: why without an
    # annotation) or dropped (status: why).
    _json("files", default=list),
    sa.Index("ix_mail_log_started_at", "started_at"),
    sqlite_autoincrement=True,
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    _fk("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.Column("key", sa.String(255), nullable=False),
    # sha256 of what the request asked for (method, path, query, body); null until answered.
    sa.Column("request_sha256", sa.String(64)),
    # The first answer; null while the first request runs (until `lease_until`).
    sa.Column("response_status", sa.Integer),
    sa.Column("response_body", sa.Text),
    _ts("created_at", nullable=False),
    _ts("lease_until", nullable=False),
    _ts("expires_at", nullable=False),
    sa.PrimaryKeyConstraint("user_id", "key"),
    sa.Index("ix_idempotency_keys_expires_at", "expires_at"),
)
