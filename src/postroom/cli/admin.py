"""The admin commands (`user create|password`, `queue list|create`): run against the database
directly, never through a running server, and never on a database that does not exist yet unless
`--create` says so (run from another directory, a relative `data_dir` would otherwise silently
start a new, empty database)."""

from __future__ import annotations

import argparse
import getpass
import sys

import sqlalchemy as sa

from postroom import credentials as accounts
from postroom.clock import utcnow
from postroom.config import Settings
from postroom.db import tables as t
from postroom.db.engine import Database
from postroom.db.migrate import apply_migrations, has_schema, sqlite_file
from postroom.domain import passwords
from postroom.domain.bootstrap import forget_credentials
from postroom.errors import BadRequest


class CommandError(Exception):
    """A command that cannot be done: one line on stderr and exit 1."""


def database_label(settings: Settings) -> str:
    """The database as an operator knows it: the SQLite file, or the URL without its password."""
    path = sqlite_file(settings.database_url)
    if path is not None:
        return str(path)
    return sa.engine.make_url(settings.database_url).render_as_string(hide_password=True)


async def open_existing(settings: Settings, create: bool) -> Database:
    """The database, migrated to the current schema; CommandError if it does not exist yet and
    `create` is false."""
    missing = (
        f"no Postroom database at {database_label(settings)} (database.url / storage.data_dir); "
        "run `postroom serve` or `postroom migrate` first, or pass --create to create one"
    )
    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        if not create:
            raise CommandError(missing)
        path.parent.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        if not create and not await has_schema(db):
            raise CommandError(missing)
        await apply_migrations(db)
    except BaseException:
        await db.dispose()
        raise
    return db


def prepare(args: argparse.Namespace) -> None:
    """What is asked at the terminal, asked before any database work (and outside the event
    loop, so Ctrl-C at a prompt interrupts at once)."""
    if args.command == "user":
        read_password(args, args.username)


async def run(settings: Settings, args: argparse.Namespace) -> None:
    work = f"{args.command} {args.action}"
    db = await open_existing(settings, args.create)
    try:
        if work == "user create":
            await user_create(db, args)
        elif work == "user password":
            await user_password(db, settings, args)
        elif work == "queue list":
            await queue_list(db)
        elif work == "queue create":
            await queue_create(db, settings, args)
    finally:
        await db.dispose()


def read_password(args: argparse.Namespace, username: str) -> str:
    """The new password: `--password`, the first line of stdin (`--password-stdin`, or whenever
    stdin is not a terminal), or typed twice at a prompt. It must pass the password policy.
    Read once and remembered on `args`."""
    known: str | None = getattr(args, "password_checked", None)
    if known is not None:
        return known
    password: str
    if args.password is not None:
        password = str(args.password)
    elif args.password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise CommandError("no password on standard input (give one line, or --password)")
        password = line.rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("passwords do not match")
    try:
        passwords.check(password, username)
    except BadRequest as error:
        raise CommandError(error.detail.rstrip(".")) from None
    args.password_checked = password
    return password


async def user_create(db: Database, args: argparse.Namespace) -> None:
    password = read_password(args, args.username)
    async with db.transaction() as conn:
        org = (await conn.execute(sa.select(t.organizations.c.id).order_by("id").limit(1))).first()
        if org is None:
            raise CommandError("no organization yet; run `postroom serve` once first")
        taken = await conn.execute(
            sa.select(t.users.c.id).where(t.users.c.username == args.username)
        )
        if taken.first() is not None:
            raise CommandError(f"user {args.username!r} already exists")
        for queue_id in args.queue:
            found = await conn.execute(
                sa.select(t.queues.c.id).where(
                    t.queues.c.id == queue_id, t.queues.c.organization_id == org.id
                )
            )
            if found.first() is None:
                raise CommandError(f"no queue {queue_id}")
        result = await conn.execute(
            t.users.insert()
            .values(
                organization_id=org.id,
                username=args.username,
                email=args.email,
                password_hash=accounts.hash_password(password),
                role=args.role,
                date_joined=utcnow(),
            )
            .returning(t.users.c.id)
        )
        user_id = result.scalar_one()
        for queue_id in args.queue:
            await conn.execute(t.queue_users.insert().values(queue_id=queue_id, user_id=user_id))
    print(f"created user {args.username} (id {user_id}, role {args.role})")


async def user_password(db: Database, settings: Settings, args: argparse.Namespace) -> None:
    password = read_password(args, args.username)
    async with db.transaction() as conn:
        result = await conn.execute(
            t.users.update()
            .where(t.users.c.username == args.username)
            .values(password_hash=accounts.hash_password(password))
        )
        if result.rowcount == 0:
            raise CommandError(f"no user {args.username!r}")
        user_id = (
            await conn.execute(sa.select(t.users.c.id).where(t.users.c.username == args.username))
        ).scalar_one()
        # A new password revokes the tokens issued under the old one.
        await conn.execute(t.tokens.delete().where(t.tokens.c.user_id == user_id))
    forget_credentials(settings.data_dir, args.username)
    print(f"password of {args.username} changed; its tokens were revoked")


async def queue_list(db: Database) -> None:
    q, i = t.queues, t.inboxes
    async with db.reading() as conn:
        rows = await conn.execute(
            sa.select(q.c.id, q.c.name, q.c.status, i.c.email)
            .select_from(q.outerjoin(i, i.c.id == q.c.inbox_id))
            .order_by(q.c.id)
        )
        for row in rows:
            print(f"{row.id}\t{row.name}\t{row.status}\t{row.email or '-'}")


async def queue_create(db: Database, settings: Settings, args: argparse.Namespace) -> None:
    from postroom.domain.inboxes import create_inbox, email_prefix_from
    from postroom.domain.queue_templates import load_template
    from postroom.domain.queues import insert_queue
    from postroom.domain.resources import insert_returning_id

    name = args.name.strip()
    if not name or len(name) > 255:
        raise CommandError("--name must be 1 to 255 characters")
    async with db.transaction() as conn:
        org = (await conn.execute(sa.select(t.organizations.c.id).order_by("id").limit(1))).first()
        if org is None:
            raise CommandError("no organization yet; run `postroom serve` once first")
        schema_id = args.schema
        if schema_id is None:
            schema = load_template("default_schema")
            schema_id = await insert_returning_id(
                conn, t.schemas, organization_id=org.id, name=f"{name} schema"[:255],
                content=schema["content"], modified_at=utcnow(),
            )  # fmt: skip
        elif (
            await conn.execute(
                sa.select(t.schemas.c.id).where(
                    t.schemas.c.id == schema_id, t.schemas.c.organization_id == org.id
                )
            )
        ).first() is None:
            raise CommandError(f"no schema with id {schema_id}")
        workspace_id = await conn.scalar(
            sa.select(t.workspaces.c.id).where(t.workspaces.c.organization_id == org.id).limit(1)
        )
        prefix = email_prefix_from(name)
        inbox_id = await create_inbox(
            conn, org.id, f"{name} inbox"[:255], prefix, settings.smtp.domain
        )
        queue_id = await insert_queue(
            conn, org.id, name=name, schema_id=schema_id, workspace_id=workspace_id,
            inbox_id=inbox_id,
        )  # fmt: skip
        email = await conn.scalar(sa.select(t.inboxes.c.email).where(t.inboxes.c.id == inbox_id))
    print(f"{queue_id}\t{name}\t{email}")
