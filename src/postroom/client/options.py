"""The command line of `postroom upload`, checked into `Options` before anything is sent."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from postroom.client.files import Globs
from postroom.client.outcomes import EXIT_CODES_HELP, UsageError
from postroom.client.resume import default_state_file

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_MAX_BYTES = 40 * 1024 * 1024
DEFAULT_PARALLEL = 4
MAX_PARALLEL = 64

DESCRIPTION = """\
Upload files, and every file under the folders named, to a queue through the REST API.
The queue and the credentials are checked once first: a wrong queue or a refused login
stops the run with one line. Progress goes to stderr (a live display on a terminal, plain
lines otherwise); a table, or --json, to stdout.

Every file accepted is recorded (by sha256, per server and queue) in a small state file, so
that --resume sends only what is not there yet. --resume also asks the server to refuse a
file whose bytes and name it already has (`reject_identical`): already uploaded when that
copy is in this queue, sent anyway when it is in another one.
"""


@dataclass
class Options:
    paths: list[str]
    queue: int
    url: str = DEFAULT_URL
    user: str | None = None
    password: str | None = None
    token: str | None = None
    metadata: str | None = None
    values: str | None = None
    parallel: int = DEFAULT_PARALLEL
    wait: bool = False
    wait_timeout: float = 600.0
    max_bytes: int = DEFAULT_MAX_BYTES
    retries: int = 6
    globs: Globs = field(default_factory=Globs)
    resume: bool = False
    state_file: Path = field(default_factory=default_state_file)
    json: bool = False
    quiet: bool = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = DESCRIPTION
    parser.epilog = EXIT_CODES_HELP
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="files or folders")
    parser.add_argument("--queue", type=int, required=True, help="id of the target queue")
    parser.add_argument(
        "--url",
        default=os.environ.get("POSTROOM_URL", DEFAULT_URL),
        help="base URL as printed by `postroom serve` (default: $POSTROOM_URL or %(default)s)",
    )
    parser.add_argument("--user", help="username (the password is prompted for when omitted)")
    parser.add_argument("--password", help="password (or $POSTROOM_PASSWORD)")
    parser.add_argument("--token", help="API token (or $POSTROOM_TOKEN) instead of --user")
    parser.add_argument("--metadata", help="JSON object stored as each annotation's metadata")
    parser.add_argument("--values", help="JSON object of initial values (upload:<key> fields)")
    parser.add_argument(
        "--parallel",
        "--concurrency",
        dest="parallel",
        type=int,
        default=DEFAULT_PARALLEL,
        metavar="N",
        help=f"files sent at once (1-{MAX_PARALLEL}, default %(default)s)",
    )
    parser.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="in folders, send only files matching (name, or relative path if it has a /); "
        "repeatable",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="in folders, skip files matching (name, or relative path); repeatable",
    )
    parser.add_argument(
        "--resume", action="store_true", help="skip files already uploaded to this queue"
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="where uploads are recorded (default: $XDG_CACHE_HOME/postroom/uploaded.jsonl, "
        "or ~/.cache/...)",
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the annotations to to_review/failed_import"
    )
    parser.add_argument(
        "--wait-timeout", type=float, default=600.0, help="seconds --wait may take (default 600)"
    )
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        help="skip files larger than this (default: the server's default, 40 MiB)",
    )
    parser.add_argument(
        "--retries", type=int, default=6, help="attempts per request on 429/5xx (default 6)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON summary on stdout instead of a table"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress display (problems are still shown)"
    )


def _check_json(args: argparse.Namespace) -> None:
    for name in ("metadata", "values"):
        raw = getattr(args, name)
        if raw is not None:
            try:
                parsed = json.loads(raw)
            except ValueError as exc:
                raise UsageError(f"--{name} is not valid JSON: {exc}") from None
            if not isinstance(parsed, dict):
                raise UsageError(f"--{name} must be a JSON object")


def _credentials(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(token, password) from the options and the environment."""
    token = args.token or (None if args.user else os.environ.get("POSTROOM_TOKEN"))
    password = args.password or os.environ.get("POSTROOM_PASSWORD")
    if args.user and args.token:
        raise UsageError("give either --user/--password or --token, not both")
    if not token and not args.user:
        raise UsageError("credentials needed: --user U [--password P] or --token T")
    if args.user and not password:
        if not sys.stdin.isatty():
            raise UsageError("--password (or $POSTROOM_PASSWORD) is needed without a terminal")
        password = getpass.getpass(f"Password for {args.user}: ")
    return token, password


def options_from_args(args: argparse.Namespace) -> Options:
    if not 1 <= args.parallel <= MAX_PARALLEL:
        raise UsageError(f"--parallel must be between 1 and {MAX_PARALLEL}")
    if args.wait_timeout <= 0 or args.max_bytes < 0:
        raise UsageError("--wait-timeout must be positive and --max-bytes not negative")
    _check_json(args)
    token, password = _credentials(args)
    return Options(
        paths=list(args.paths),
        queue=args.queue,
        url=_api_base(args.url),
        user=args.user,
        password=password,
        token=token,
        metadata=args.metadata,
        values=args.values,
        parallel=args.parallel,
        wait=args.wait,
        wait_timeout=args.wait_timeout,
        max_bytes=args.max_bytes,
        retries=max(1, args.retries),
        globs=Globs(tuple(args.include), tuple(args.exclude)),
        resume=args.resume,
        state_file=args.state_file or default_state_file(),
        json=args.json,
        quiet=args.quiet,
    )


def _api_base(url: str) -> str:
    """`http://h:8000`, `http://h:8000/` and `http://h:8000/api/v1` all mean the same server."""
    url = url.rstrip("/")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url must start with http:// or https://, got {url!r}")
    return url
