"""The Prometheus metrics of Postroom: one registry, every metric defined here, imported by its part.

Parts only increment/observe; `GET /metrics` (api/routes/metrics.py) renders the registry. Labels have
bounded values (route templates, status codes, reply codes, reasons, step names) so the series
count stays small. Counters are per process: with several instances, sum them in PromQL. The
pipeline gauges are read from the shared `jobs` table at scrape time (`domain.jobs.refresh_gauges`), so every instance reports
the same cluster-wide figure (use max(), not sum()).

Who increments what:
  HTTP middleware (api/middleware/observe.py) HTTP_REQUESTS, HTTP_DURATION, UPLOAD_BYTES/UPLOAD_REQUESTS
                                    (channel="http", from accepted upload routes)
  HTTP uploads                      UPLOADED_FILES                          (channel="http")
  SMTP listener                     SMTP_SESSIONS, SMTP_REPLIES, SMTP_MESSAGES, UPLOAD_BYTES/FILES
                                    (channel="smtp")
  pipeline workers                  JOBS_FINISHED, JOB_FAILURES, JOB_RETRIES, observe_import_latency()
  rate limits                       RATE_LIMITED
  connection caps (connections.py)  CONNECTIONS_OPEN, CONNECTIONS_REFUSED, CONNECTIONS_TIMED_OUT
  password checks (credentials.py)  PASSWORD_CHECKS
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from postroom.clock import utcnow

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "postroom_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "postroom_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
UPLOAD_BYTES = Counter(
    "postroom_upload_bytes",
    "Bytes received in accepted uploads, by channel: http (request bodies), smtp (files kept).",
    ["channel"],
    registry=REGISTRY,
)
UPLOAD_REQUESTS = Counter(
    "postroom_upload_requests",
    "Accepted upload requests (HTTP 201/202) or accepted mail messages, by channel.",
    ["channel"],
    registry=REGISTRY,
)
UPLOADED_FILES = Counter(
    "postroom_uploaded_files",
    "Files stored durably (one document each), by intake channel (http, smtp).",
    ["channel"],
    registry=REGISTRY,
)
SMTP_SESSIONS = Counter(
    "postroom_smtp_sessions",
    "SMTP connections accepted by the listener.",
    registry=REGISTRY,
)
SMTP_REPLIES = Counter(
    "postroom_smtp_replies",
    "SMTP replies sent, by reply code (250, 421, 451, 550, 552, ...).",
    ["code"],
    registry=REGISTRY,
)
SMTP_MESSAGES = Counter(
    "postroom_smtp_messages",
    "Mail messages, by outcome (accepted, rejected) and reason (e.g. stored, filtered, "
    "unknown_recipient, too_large, rate_limited, internal_error).",
    ["outcome", "reason"],
    registry=REGISTRY,
)
JOBS_FINISHED = Counter(
    "postroom_pipeline_jobs_finished",
    "Pipeline jobs that reached a final state, by kind and outcome (done, failed).",
    ["kind", "outcome"],
    registry=REGISTRY,
)
JOB_FAILURES = Counter(
    "postroom_pipeline_job_failures",
    "Pipeline step errors that failed a job for good, by kind and step.",
    ["kind", "step"],
    registry=REGISTRY,
)
JOB_RETRIES = Counter(
    "postroom_pipeline_job_retries",
    "Transient pipeline step errors that were retried later, by kind and step.",
    ["kind", "step"],
    registry=REGISTRY,
)
IMPORT_LATENCY = Histogram(
    "postroom_pipeline_import_latency_seconds",
    "Time from a document's arrival to its annotation leaving importing, by final status.",
    ["status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "postroom_pipeline_queue_depth",
    "Pipeline jobs waiting to run (status queued), by kind; read from the database at scrape.",
    ["kind"],
    registry=REGISTRY,
)
JOBS_RUNNING = Gauge(
    "postroom_pipeline_jobs_running",
    "Pipeline jobs claimed by a worker of any instance, by kind; read at scrape.",
    ["kind"],
    registry=REGISTRY,
)
OLDEST_QUEUED_AGE = Gauge(
    "postroom_pipeline_oldest_queued_age_seconds",
    "Age of the oldest job that is due and still queued (0 when none); read at scrape.",
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "postroom_rate_limited",
    "Requests or SMTP commands refused by a rate limit, by scope "
    "(address, user, login, smtp_connection, smtp_message).",
    ["scope"],
    registry=REGISTRY,
)

CONNECTIONS_OPEN = Gauge(
    "postroom_connections_open",
    "Client connections open in this process, by protocol (http, smtp).",
    ["protocol"],
    registry=REGISTRY,
)
CONNECTIONS_REFUSED = Counter(
    "postroom_connections_refused",
    "Connections refused at accept by a cap, by protocol and scope (client, total).",
    ["protocol", "scope"],
    registry=REGISTRY,
)
CONNECTIONS_TIMED_OUT = Counter(
    "postroom_connections_timed_out",
    "Connections closed by a deadline, by protocol and phase (header, body, upload_rate).",
    ["protocol", "phase"],
    registry=REGISTRY,
)
PASSWORD_CHECKS = Counter(
    "postroom_password_checks",
    "argon2 password verifications run, by subject (user, or unknown: a username that does not "
    "exist is checked against a dummy hash so it takes as long).",
    ["subject"],
    registry=REGISTRY,
)


def observe_import_latency(arrived_at: datetime, status: str) -> None:
    """Record an annotation leaving `importing` (status: to_review, failed_import, ...)."""
    IMPORT_LATENCY.labels(status=status).observe(max(0.0, (utcnow() - arrived_at).total_seconds()))


def record_smtp_reply(reply: str) -> None:
    """Count one SMTP reply by its three-digit code (pass the whole reply line)."""
    SMTP_REPLIES.labels(code=reply[:3]).inc()
