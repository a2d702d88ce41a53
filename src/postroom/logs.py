"""Logging: configured once from `[log]`, one line per event, plain text or JSON.

Events carry their ids as structured fields: `logs.event(log, "job finished", annotation=12,
queue=3, outcome="to_review")` renders as `... job finished annotation=12 queue=3
outcome=to_review` in text, or as keys of the JSON object with `log.format = "json"`. Fields whose
name looks secret (password, token, authorization, key, secret, content) are replaced by `***`
before rendering, so a careless call cannot leak a credential or document content.

Every line logged while an HTTP request is handled carries its `request_id` (the `X-Request-ID`
the client sent, when sane, or one made up; also returned in the reply): the API edge sets it in
the `REQUEST_ID` context variable and `RequestIdFilter` (installed on the handler) copies it onto
each record, whichever logger wrote it.

Who logs what:
  postroom.access    one line per HTTP request (api/middleware/observe.py); health checks and
                     metrics scrapes at DEBUG
  postroom.smtp      one line per SMTP session, one per accepted message
  postroom.pipeline  one line per job outcome
aiosmtpd's own logger (`mail.log`, a dozen INFO lines per session with every address) is raised to
WARNING unless the level is DEBUG.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from postroom.config import LogSettings

FIELDS_ATTR = "postroom_fields"
REDACTED = "***"
REQUEST_ID: ContextVar[str | None] = ContextVar("postroom_request_id", default=None)
_SECRET_WORDS = ("password", "token", "authorization", "secret", "cookie", "content", "key")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def safe_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if _is_secret(k) else v) for k, v in fields.items() if v is not None}


def event(
    logger: logging.Logger, message: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log one event with structured fields (ids, outcome, durations); None values are left out."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={FIELDS_ATTR: safe_fields(fields)})


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the HTTP request being handled (if any)."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def _text_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """`2026-01-01T12:00:00.123Z INFO postroom.access GET /api/v1/queues status=200 ...`"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        line = f"{stamp}Z {record.levelname} {record.name} {record.getMessage()}"
        fields = getattr(record, FIELDS_ATTR, None)
        if fields:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line += f" request_id={_text_value(request_id)}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        document: dict[str, Any] = {
            "time": stamp,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in (getattr(record, FIELDS_ATTR, None) or {}).items():
            document.setdefault(key, value)
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            document["request_id"] = request_id
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Replace the root handlers with one stream handler in the configured format and level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    # aiohttp's own access log duplicates ours; its other loggers stay at the configured level.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiosmtpd: a dozen INFO lines per session, addresses included; ours is one line per session.
    debugging = settings.level == "DEBUG"
    logging.getLogger("mail.log").setLevel(logging.DEBUG if debugging else logging.WARNING)
