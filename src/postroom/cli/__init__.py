"""The command line: `postroom serve | migrate | config | upload | user ... | queue ... | completion`.

Exit codes: 0 done; 1 the command failed (one line on stderr saying why: a port in use, the
database unreachable or missing, a refused password, ...); 2 a mistake on the command line or in
the configuration (one line naming the option or setting); 130 interrupted (Ctrl-C). Never a
traceback: anything unexpected is one line too.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import socket
import sys
from collections.abc import Sequence

import sqlalchemy as sa

from postroom.app import ListenError, Running, Service, run_until_signalled
from postroom.cli import admin, completion
from postroom.cli.parser import build_parser
from postroom.client import upload_command as uploader
from postroom.config import (
    ConfigError,
    Settings,
    load_settings_and_sources,
    render_default_toml,
    render_effective,
)
from postroom.db.engine import Database
from postroom.db.migrate import apply_migrations
from postroom.logs import configure_logging

# Connection failures that can only mean the database server (the one peer a command dials).
_UNREACHABLE = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}


def _fail(message: str, code: int = 1) -> int:
    print(f"postroom: {message}", file=sys.stderr)
    return code


def _print_start(settings: Settings, running: Running) -> None:
    base = settings.base_url
    print(f"Postroom API:  {base}/api/v1", flush=True)
    if running.smtp_port is not None:
        print(f"SMTP inboxes:  {settings.smtp.host}:{running.smtp_port}", flush=True)
    first = running.first_start
    if first is None:
        return
    print("First start: created an organization, a workspace, a schema and a queue.")
    if first.admin_password:
        print(f"Admin user:    {first.admin_username}   password: {first.admin_password}")
        print("               (generated now: store it safely)")
        if first.credentials_file is not None:
            print(f"               also kept in {first.credentials_file} (mode 0600)")
            print("               until that user first logs in; then it is deleted")
    else:
        print(f"Admin user:    {first.admin_username}   password: from the configuration")
    print(f"Inbox address: {first.inbox_email}")
    user = first.admin_username
    password = first.admin_password or "<password>"
    print("Upload a file:")
    print(
        f"  curl -u '{user}:{password}' -F content=@invoice.pdf "
        f"{base}/api/v1/queues/{first.queue_id}/upload",
        flush=True,
    )


async def _serve(settings: Settings) -> None:
    service = Service(settings)
    running = await service.start()
    _print_start(service.settings, running)
    await run_until_signalled(service)


async def _migrate(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # where the SQLite file lives
    db = Database(settings.database_url)
    try:
        await apply_migrations(db)
    finally:
        await db.dispose()
    print("database is up to date")


def _execute(settings: Settings, args: argparse.Namespace) -> None:
    if args.command == "serve":
        asyncio.run(_serve(settings))
    elif args.command == "migrate":
        asyncio.run(_migrate(settings))
    else:
        if settings.log.level != "DEBUG":  # Alembic's chatter would bury the command's answer
            logging.getLogger("alembic").setLevel(logging.WARNING)
        admin.prepare(args)
        asyncio.run(admin.run(settings, args))


def _run(args: argparse.Namespace) -> int:
    if args.command == "upload":  # a client of a running server: needs no server settings
        return uploader.main(args)
    if args.command == "completion":
        sys.stdout.write(completion.script(build_parser(), args.shell))
        return 0
    if args.command == "config" and args.what == "defaults":
        sys.stdout.write(render_default_toml())
        return 0
    try:
        settings, sources = load_settings_and_sources(args.config)
    except ConfigError as error:
        return _fail(f"configuration error: {error}", 2)
    if args.command == "config":
        sys.stdout.write(render_effective(settings, sources))
        return 0
    configure_logging(settings.log)
    try:
        _execute(settings, args)
    except (ListenError, admin.CommandError) as error:
        return _fail(str(error))
    except sa.exc.SQLAlchemyError as error:
        # An unreachable or unusable database is an operator's problem: one line, no traceback.
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return _fail(f"database error: {reason} (database: {admin.database_label(settings)})")
    except OSError as error:
        if isinstance(error, socket.gaierror | TimeoutError) or error.errno in _UNREACHABLE:
            where = admin.database_label(settings)
            return _fail(f"cannot reach the database {where}: {error.strerror or error}")
        return _fail(str(error))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code (see the module docstring)."""
    try:
        return _run(build_parser().parse_args(argv))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:  # `postroom ... | head`: the reader left, nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as error:  # the promise: never a traceback, whatever went wrong
        text = str(error).strip().splitlines()
        detail = f": {text[0]}" if text else ""
        return _fail(f"unexpected error: {type(error).__name__}{detail}")
