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

from postroom.db.columns import foreign_key, id_column, json_column, timestamp

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)


def _table(name: str, *items: sa.schema.SchemaItem) -> sa.Table:
    """A table of `metadata`. On SQLite a table with an `id` is AUTOINCREMENT: ids never reused."""
    has_id = any(isinstance(item, sa.Column) and item.name == "id" for item in items)
    return sa.Table(name, metadata, *items, sqlite_autoincrement=has_id)


organizations = _table(
    "organizations",
    id_column(),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("is_trial", sa.Boolean, nullable=False, default=False),
    timestamp("created_at", nullable=False),
    timestamp("trial_expires_at"),
    json_column("ui_settings", default=dict),
    json_column("metadata", default=dict),
)

users = _table(
    "users",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
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
    timestamp("date_joined", nullable=False),
    timestamp("last_login"),
    json_column("ui_settings", default=dict),
    json_column("metadata", default=dict),
)

tokens = _table(
    "tokens",
    # sha256 of the key: a leaked database does not leak usable tokens.
    sa.Column("key_hash", sa.String(64), primary_key=True),
    foreign_key("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    timestamp("created_at", nullable=False),
    timestamp("expires_at", nullable=False),
    sa.Index("ix_tokens_user_id", "user_id"),
)

workspaces = _table(
    "workspaces",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("autopilot", sa.Boolean, nullable=False, default=False),
    json_column("metadata", default=dict),
    timestamp("created_at", nullable=False),
)

schemas = _table(
    "schemas",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    json_column("content", default=list),
    json_column("metadata", default=dict),
    foreign_key("modified_by_id", "users.id"),
    timestamp("modified_at"),
)

inboxes = _table(
    "inboxes",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    # Stored lower-cased: RCPT TO matching is case-insensitive.
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("email_prefix", sa.String(57), nullable=False),
    sa.Column("bounce_email_to", sa.String(254)),
    sa.Column("bounce_unprocessable_attachments", sa.Boolean, nullable=False, default=False),
    sa.Column("bounce_postponed_annotations", sa.Boolean, nullable=False, default=False),
    sa.Column("bounce_deleted_annotations", sa.Boolean, nullable=False, default=False),
    sa.Column("bounce_email_with_no_attachments", sa.Boolean, nullable=False, default=True),
    json_column("filters", default=dict),
    sa.Column("dmarc_check_action", sa.String(20), nullable=False, default="accept"),
    json_column("metadata", default=dict),
    foreign_key("modified_by_id", "users.id"),
    timestamp("modified_at"),
)

queues = _table(
    "queues",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    foreign_key("workspace_id", "workspaces.id"),
    foreign_key("schema_id", "schemas.id", nullable=False, ondelete="RESTRICT"),
    foreign_key("inbox_id", "inboxes.id"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("connector", sa.String(1000)),
    sa.Column("session_timeout", sa.String(32), nullable=False, default="01:00:00"),
    sa.Column("rir_url", sa.String(1000)),
    json_column("rir_params", default=None),
    sa.Column("dedicated_engine", sa.String(1000)),
    sa.Column("generic_engine", sa.String(1000)),
    # The `engine` of POST /queues/from_template (stored and returned, never run).
    sa.Column("engine", sa.String(1000)),
    sa.Column("default_score_threshold", sa.Float, nullable=False, default=0.8),
    sa.Column("automation_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("automation_level", sa.String(32), nullable=False, default="never"),
    sa.Column("locale", sa.String(32), nullable=False, default="en_GB"),
    json_column("metadata", default=dict),
    sa.Column("use_confirmed_state", sa.Boolean, nullable=False, default=False),
    sa.Column("document_lifetime", sa.String(40)),
    sa.Column("status", sa.String(32), nullable=False, default="active"),
    timestamp("delete_after"),
    json_column("settings", default=dict),
    json_column("workflows", default=list),
    sa.Column("training_enabled", sa.Boolean, nullable=False, default=True),
    foreign_key("modified_by_id", "users.id"),
    timestamp("modified_at"),
    timestamp("created_at", nullable=False),
    sa.Index("ix_queues_status_delete_after", "status", "delete_after"),
    # An inbox feeds one queue: enforced here too, so concurrent changes cannot share one.
    sa.UniqueConstraint("inbox_id"),
)

queue_users = _table(
    "queue_users",
    foreign_key("queue_id", "queues.id", nullable=False, ondelete="CASCADE"),
    foreign_key("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("queue_id", "user_id"),
    sa.Index("ix_queue_users_user_id", "user_id"),
)

hooks = _table(
    "hooks",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(40), nullable=False, default="webhook"),
    json_column("events", default=list),
    json_column("config", default=dict),
    json_column("settings", default=dict),
    json_column("sideload", default=list),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    json_column("metadata", default=dict),
    sa.Column("description", sa.Text, nullable=False, default=""),
    # Ids of hooks that must run before this one (shown as URLs).
    json_column("run_after", default=list),
    json_column("test", default=dict),
    foreign_key("token_owner_id", "users.id"),
    sa.Column("token_lifetime_s", sa.Integer),
    foreign_key("created_by_id", "users.id"),
    timestamp("created_at"),
    foreign_key("modified_by_id", "users.id"),
    timestamp("modified_at"),
)

queue_hooks = _table(
    "queue_hooks",
    foreign_key("queue_id", "queues.id", nullable=False, ondelete="CASCADE"),
    foreign_key("hook_id", "hooks.id", nullable=False, ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("queue_id", "hook_id"),
)

emails = _table(
    "emails",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    foreign_key("queue_id", "queues.id", ondelete="CASCADE"),
    foreign_key("inbox_id", "inboxes.id"),
    foreign_key("parent_id", "emails.id"),
    # The user who imported it through POST /emails/import; null for mail received over SMTP.
    foreign_key("creator_id", "users.id"),
    sa.Column("type", sa.String(20), nullable=False, default="incoming"),
    sa.Column("subject", sa.Text),
    sa.Column("from_email", sa.String(512), nullable=False, default=""),
    sa.Column("from_name", sa.String(512), nullable=False, default=""),
    json_column("to", default=list),
    json_column("cc", default=list),
    json_column("bcc", default=list),
    sa.Column("body_text_plain", sa.Text),
    sa.Column("body_text_html", sa.Text),
    sa.Column("message_id", sa.String(998)),
    # The earlier email of this inbox with the same Message-ID and sender but other bytes: this
    # one is flagged (a tampered or replayed copy, or a sender reusing ids), not merged.
    sa.Column("message_id_conflict_id", sa.Integer),
    sa.Column("raw_blob", sa.String(128)),
    sa.Column("raw_sha256", sa.String(64)),
    json_column("labels", default=list),
    json_column("metadata", default=dict),
    sa.Column("filtered_reason", sa.String(255)),
    sa.Column("notification_status", sa.String(64)),
    # The SPF/DKIM/DMARC verdict as an Authentication-Results text (RFC 8601).
    sa.Column("authentication_results", sa.Text),
    timestamp("created_at", nullable=False),
    sa.Index("ix_emails_queue_id_created_at", "queue_id", "created_at"),
    # A 250 lost on the wire makes the client resend: the same message is stored once per inbox.
    sa.Index("ix_emails_dedupe", "inbox_id", "message_id", "raw_sha256"),
)

uploads = _table(
    "uploads",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    foreign_key("queue_id", "queues.id", ondelete="CASCADE"),
    foreign_key("creator_id", "users.id"),
    foreign_key("email_id", "emails.id", ondelete="CASCADE"),
    json_column("metadata", default=dict),
    json_column("values", default=dict),
    timestamp("created_at", nullable=False),
)

documents = _table(
    "documents",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    foreign_key("upload_id", "uploads.id", ondelete="CASCADE"),
    foreign_key("email_id", "emails.id", ondelete="CASCADE"),
    foreign_key("parent_id", "documents.id"),
    foreign_key("creator_id", "users.id"),
    # Content-addressed blob key (sha256 hex); null once purged.
    sa.Column("s3_name", sa.String(128)),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False, default=0),
    sa.Column("mime_type", sa.String(255), nullable=False),
    sa.Column("original_file_name", sa.String(1024), nullable=False),
    sa.Column("attachment_status", sa.String(64)),
    json_column("metadata", default=dict),
    timestamp("arrived_at", nullable=False),
    timestamp("created_at", nullable=False),
    sa.Index("ix_documents_sha256", "organization_id", "sha256"),
    sa.Index("ix_documents_upload_id", "upload_id"),
    sa.Index("ix_documents_email_id", "email_id"),
)

annotations = _table(
    "annotations",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    foreign_key("queue_id", "queues.id", nullable=False, ondelete="CASCADE"),
    foreign_key("document_id", "documents.id", nullable=False, ondelete="CASCADE"),
    foreign_key("schema_id", "schemas.id", nullable=False, ondelete="RESTRICT"),
    foreign_key("upload_id", "uploads.id", ondelete="CASCADE"),
    foreign_key("email_id", "emails.id"),
    foreign_key("creator_id", "users.id"),
    sa.Column("status", sa.String(32), nullable=False, default="importing"),
    # Where `start` took it from, so `cancel` can put it back.
    sa.Column("previous_status", sa.String(32)),
    json_column("metadata", default=dict),
    json_column("content", default=list),
    json_column("messages", default=list),
    json_column("pages", default=list),
    sa.Column("page_count", sa.Integer),
    sa.Column("automated", sa.Boolean, nullable=False, default=False),
    sa.Column("note", sa.Text),
    timestamp("arrived_at", nullable=False),
    timestamp("created_at", nullable=False),
    timestamp("modified_at"),
    foreign_key("modifier_id", "users.id"),
    foreign_key("modified_by_id", "users.id"),
    timestamp("assigned_at"),
    timestamp("confirmed_at"),
    foreign_key("confirmed_by_id", "users.id"),
    timestamp("exported_at"),
    foreign_key("exported_by_id", "users.id"),
    timestamp("export_failed_at"),
    timestamp("deleted_at"),
    foreign_key("deleted_by_id", "users.id"),
    timestamp("rejected_at"),
    foreign_key("rejected_by_id", "users.id"),
    timestamp("purged_at"),
    foreign_key("purged_by_id", "users.id"),
    sa.Index("ix_annotations_queue_id_status", "queue_id", "status"),
    # Export walks a queue's annotations by id in batches (keyset): without it, each batch
    # re-sorts the whole queue.
    sa.Index("ix_annotations_queue_id_id", "queue_id", "id"),
    sa.Index("ix_annotations_document_id", "document_id"),
    sa.Index("ix_annotations_upload_id", "upload_id"),
    sa.Index("ix_annotations_status_modified_at", "status", "modified_at"),
)

tasks = _table(
    "tasks",
    id_column(),
    foreign_key("organization_id", "organizations.id", nullable=False, ondelete="CASCADE"),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, default="running"),
    sa.Column("detail", sa.Text),
    foreign_key("upload_id", "uploads.id", ondelete="CASCADE"),
    foreign_key("email_id", "emails.id", ondelete="CASCADE"),
    foreign_key("creator_id", "users.id"),
    json_column("content", default=dict),
    timestamp("created_at", nullable=False),
    timestamp("expires_at", nullable=False),
    sa.Index("ix_tasks_upload_id", "upload_id"),
)

jobs = _table(
    "jobs",
    id_column(),
    sa.Column("kind", sa.String(40), nullable=False),
    foreign_key("annotation_id", "annotations.id", ondelete="CASCADE"),
    json_column("payload", default=dict),
    # queued → running → done | failed (a running job whose lease expired is claimable again)
    sa.Column("status", sa.String(16), nullable=False, default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    timestamp("run_after", nullable=False),
    timestamp("lease_until"),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("last_error", sa.Text),
    timestamp("created_at", nullable=False),
    timestamp("finished_at"),
    sa.Index("ix_jobs_status_run_after", "status", "run_after"),
    sa.Index("ix_jobs_annotation_id", "annotation_id"),
)

duty_leases = _table(
    "duty_leases",
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    timestamp("lease_until", nullable=False),
)

# One row per SMTP transaction (MAIL … DATA, or refused on the way): what the sender was answered.
# Written after the reply by the SMTP edge, detached from the delivery (a lost row never loses
# mail); read by the operator console's mail log.
mail_log = _table(
    "mail_log",
    id_column(),
    timestamp("started_at", nullable=False),
    timestamp("finished_at", nullable=False),
    sa.Column("client_address", sa.String(64), nullable=False, default=""),
    sa.Column("helo", sa.String(255), nullable=False, default=""),
    sa.Column("mail_from", sa.String(512), nullable=False, default=""),
    # [{"address", "reply"}]: every RCPT, with the reply it got.
    json_column("recipients", default=list),
    sa.Column("size", sa.BigInteger),
    sa.Column("reply_code", sa.Integer),
    sa.Column("reply_text", sa.String(512), nullable=False, default=""),
    # The first accepted recipient's queue (null when none was accepted).
    foreign_key("queue_id", "queues.id"),
    json_column("email_ids", default=list),
    # [{"name", "kept", "status"}]: each file of the message, kept (status: why without an
    # annotation) or dropped (status: why).
    json_column("files", default=list),
    sa.Index("ix_mail_log_started_at", "started_at"),
)

idempotency_keys = _table(
    "idempotency_keys",
    foreign_key("user_id", "users.id", nullable=False, ondelete="CASCADE"),
    sa.Column("key", sa.String(255), nullable=False),
    # sha256 of what the request asked for (method, path, query, body); null until answered.
    sa.Column("request_sha256", sa.String(64)),
    # The first answer; null while the first request runs (until `lease_until`).
    sa.Column("response_status", sa.Integer),
    sa.Column("response_body", sa.Text),
    timestamp("created_at", nullable=False),
    timestamp("lease_until", nullable=False),
    timestamp("expires_at", nullable=False),
    sa.PrimaryKeyConstraint("user_id", "key"),
    sa.Index("ix_idempotency_keys_expires_at", "expires_at"),
)
