"""Logging: configured once from `[log]`, one line per event, plain text or JSON.

Events carry their ids as structured fields: `logs.event(log, "job finished", annotation=12,
queue=3, outcome="to_review")` renders as `... job finished annotation=12 queue=3
outcome=to_review` in text, or as keys of the JSON object with `log.format = "json"`. Fields whose
name looks secret (password, token, authorization, key, secret, content) are replaced by `***`
before rendering, so a careless call cannot leak a credential or document content.

Who logs what:
  postroom.access    one line per HTTP request (web/observe.py)
  postroom.smtp      one line per SMTP transaction
  postroom.pipeline  one line per job outcome
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from postroom.config import LogSettings

FIELDS_ATTR = "postroom_fields"
REDACTED = "***"
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
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(settings: LogSettings, stream: TextIO | None = None) -> None:
    """Replace the root handlers with one stream handler in the configured format and level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    # aiohttp's own access log duplicates ours; its other loggers stay at the configured level.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
