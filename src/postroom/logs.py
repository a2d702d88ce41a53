"""Logging: configured once from `[log]`, one line per event, plain text or JSON.

Events carry their ids as structured fields: `logs.event(log, "job finished", annotation=12,
queue=3, outcome="to_review")` renders as `... job finished annotation=12 queue=3
outcome=to_review` in text, or as keys of the JSON object with `log.format = "json"`. Fields whose
name looks secret (password, token, authorization, key, secret, content) are replaced by `***`
before rendering, so a careless call cannot leak a credential or document content. Whatever a
line's origin (aiohttp quoting a malformed request line in its error, an exception message), the
formatters also blank any `Authorization:` header value and any `Basic`/`Bearer`/`Token`
credential in the rendered message and traceback (`redact`).

Connection-level loggers (aiohttp's server, asyncio, aiosmtpd, postroom.connections) are
throttled: each kind of message (logger, level, template) passes `THROTTLE_BURST` times per
`THROTTLE_WINDOW_S`, the rest are dropped and counted in the next one that passes — a flood of
broken or refused connections cannot fill the disk with log lines.

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
import re
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from postroom.config import LogSettings

FIELDS_ATTR = "postroom_fields"
REDACTED = "***"
REQUEST_ID: ContextVar[str | None] = ContextVar("postroom_request_id", default=None)
_SECRET_WORDS = ("password", "token", "authorization", "secret", "cookie", "content", "key")


# An Authorization header as logged by anyone: the value up to the end of the line is blanked.
_AUTH_HEADER = re.compile(r"(?i)((?:proxy-)?authorization\b['\"]?[ \t]*[:=]?[ \t]*)[^\r\n]+")
# A credential after its scheme word, wherever it stands.
_CREDENTIAL = re.compile(r"(?i)\b(basic|bearer|token)(\s+)[A-Za-z0-9+/=._~\\-]{8,}")

THROTTLED_LOGGERS = ("aiohttp.server", "asyncio", "mail.log", "postroom.connections")
THROTTLE_BURST = 5
THROTTLE_WINDOW_S = 60.0


def redact(text: str) -> str:
    """`text` with Authorization header values and scheme credentials replaced by `***`."""
    if not text:
        return text
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    return _CREDENTIAL.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


class Throttle(logging.Filter):
    """Passes `burst` records of one kind (logger, level, message template) per `window_s`."""

    MAX_KINDS = 1000

    def __init__(
        self,
        burst: int = THROTTLE_BURST,
        window_s: float = THROTTLE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        # kind → [window start, passed in window, dropped since the last one passed]
        self._kinds: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        state = self._kinds.get(key)
        if state is None:
            if len(self._kinds) >= self.MAX_KINDS:
                self._kinds.clear()
            state = self._kinds[key] = [now, 0, 0]
        if now - state[0] >= self.window_s:
            state[0], state[1] = now, 0
        if state[1] >= self.burst:
            state[2] += 1
            return False
        state[1] += 1
        if state[2]:
            record.msg = f"{record.msg} [{int(state[2])} similar lines suppressed]"
            state[2] = 0
        return True


def throttle_connection_logs(throttle: Throttle | None = None) -> None:
    """Install one `Throttle` on each of `THROTTLED_LOGGERS` (replacing an earlier one)."""
    throttle = throttle or Throttle()
    for name in THROTTLED_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, Throttle)]:
            logger.removeFilter(old)
        logger.addFilter(throttle)


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _safe_value(name: str, value: Any) -> Any:
    if _is_secret(name):
        return REDACTED
    return redact(value) if isinstance(value, str) else value


def safe_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: _safe_value(k, v) for k, v in fields.items() if v is not None}


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
        line = f"{stamp}Z {record.levelname} {record.name} {redact(record.getMessage())}"
        fields = getattr(record, FIELDS_ATTR, None)
        if fields:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line += f" request_id={_text_value(request_id)}"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        document: dict[str, Any] = {
            "time": stamp,
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in (getattr(record, FIELDS_ATTR, None) or {}).items():
            document.setdefault(key, value)
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            document["request_id"] = request_id
        if record.exc_info:
            document["exception"] = redact(self.formatException(record.exc_info))
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
    throttle_connection_logs()
    # aiohttp's own access log duplicates ours; its other loggers stay at the configured level.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # aiosmtpd: a dozen INFO lines per session, addresses included; ours is one line per session.
    debugging = settings.level == "DEBUG"
    logging.getLogger("mail.log").setLevel(logging.DEBUG if debugging else logging.WARNING)
