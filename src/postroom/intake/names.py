"""File names as the channels give them, and the name each file is stored under.

HTTP: from `Content-Disposition` (RFC 6266, RFC 5987 `filename*`), from a multipart part's header
(RFC 7578), or from a URL path segment (which the router has already percent-decoded: it must not
be decoded twice). Such a name is stored verbatim as the document's `original_file_name`
(`clean_file_name`); only what no file name can hold is removed: control characters (NUL breaks
PostgreSQL text) and bytes that are not UTF-8.

E-mail: an attachment's name (`attachment_name`) also loses its slashes, and long names are
shortened to 255 characters keeping the extension, as mail clients save them.

A name is never used as a filesystem path (blobs are named by their sha256).
"""

from __future__ import annotations

import re
import urllib.parse

from postroom.errors import BadRequest

DEFAULT_FILE_NAME = "document"
MAX_FILE_NAME_CHARS = 1024  # documents.original_file_name is VARCHAR(1024)
MAX_ATTACHMENT_NAME_CHARS = 255

_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_CONTROL = {c: None for c in [*range(0x00, 0x20), 0x7F]}


def parse_disposition(header: str | None) -> tuple[str, dict[str, str]]:
    """`attachment; name="a"; filename*=UTF-8''x` → ("attachment", {"name": "a", ...}).

    Parameter names are lower-cased; quoted values are unquoted (`\\"` and `\\\\` unescaped).
    Malformed pieces are skipped rather than refused: a file name is never worth a 400 by itself.
    """
    if not header:
        return "", {}
    pieces = _split_params(header)
    disposition = pieces[0].strip().lower() if pieces else ""
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        key, sep, value = piece.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            continue
        params.setdefault(key, _unquote(value.strip()))
    return disposition, params


def _split_params(header: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in header:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return pieces


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        return inner.replace('\\"', '"').replace("\\\\", "\\")
    return value


def _decode_rfc5987(value: str) -> str | None:
    """`UTF-8'en'na%C3%AFve.pdf` → `naïve.pdf`; None when the value does not decode."""
    charset, sep, rest = value.partition("'")
    if not sep:
        return None
    _language, sep, encoded = rest.partition("'")
    if not sep:
        return None
    try:
        return urllib.parse.unquote_to_bytes(encoded).decode(charset.strip() or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return None


def filename_from_params(params: dict[str, str]) -> str | None:
    """`filename*` (RFC 5987) when it decodes, else `filename`; None when neither is given."""
    extended = params.get("filename*")
    if extended:
        decoded = _decode_rfc5987(extended)
        if decoded:
            return decoded
    plain = params.get("filename")
    return _percent_decoded(plain) if plain is not None else None


def _percent_decoded(name: str) -> str:
    """Undo the percent-encoding some clients put on a plain `filename` (aiohttp's FormData
    sends `Fa%C4%8Dtura.pdf`, HTML forms send `%22` for a quote); a name whose escapes do not
    decode as UTF-8 is kept as it came."""
    if "%" not in name or not _ESCAPE.search(name):
        return name
    try:
        return urllib.parse.unquote(name, errors="strict")
    except UnicodeDecodeError:
        return name


def filename_from_disposition(header: str | None) -> str | None:
    return filename_from_params(parse_disposition(header)[1])


def clean_file_name(raw: str | None) -> str:
    """The name to store: verbatim but for control characters; `document` when nothing is left.

    Header values that were not UTF-8 reach us as surrogate escapes (aiohttp decodes with
    `surrogateescape`); those bytes are read as Latin-1, what such old clients meant.
    """
    if raw is None:
        return DEFAULT_FILE_NAME
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raw = raw.encode("utf-8", "surrogateescape").decode("latin-1")
    name = raw.translate(_CONTROL)
    if not name.strip():
        return DEFAULT_FILE_NAME
    if len(name) > MAX_FILE_NAME_CHARS:
        raise BadRequest(f"filename: longer than {MAX_FILE_NAME_CHARS} characters.")
    return name


def attachment_name(raw: str | None, fallback: str) -> str:
    """The name of an e-mail attachment: `/`, `\\` and control characters become `_`."""
    name = "".join(
        "_" if ch in "/\\" or ord(ch) < 32 or ord(ch) == 127 else ch for ch in (raw or "")
    )
    name = name.strip()
    if not name or name in (".", ".."):
        return fallback
    limit = MAX_ATTACHMENT_NAME_CHARS
    if len(name) > limit:
        _stem, dot, ext = name.rpartition(".")
        keep = ext if dot and len(ext) <= 16 else ""
        name = (name[: limit - len(keep) - 1] + "." + keep) if keep else name[:limit]
    return name
