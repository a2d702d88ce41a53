"""The command line: `postroom serve | migrate | config | upload | user ... | queue ...`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

import sqlalchemy as sa

from postroom import credentials as accounts
from postroom.app import Running, Service, run_until_signalled
from postroom.client import upload_command as uploader
from postroom.clock import utcnow
from postroom.config import (
    ConfigError,
    Settings,
    load_settings_and_sources,
    render_default_toml,
    render_effective,
)
from postroom.db import tables as t
from postroom.db.engine import Database
from postroom.db.migrate import apply_migrations
from postroom.domain.access import GROUP_IDS
from postroom.logs import configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="postroom", description="Postroom document intake gateway"
    )
    parser.add_argument("--config", help="path of postroom.toml (default: $POSTROOM_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run HTTP, SMTP and the pipeline (migrates first)")
    sub.add_parser("migrate", help="apply database migrations and exit")
    config = sub.add_parser("config", help="print the default configuration file")
    config.add_argument(
        "what",
        nargs="?",
        choices=("defaults", "show"),
        default="defaults",
        help="defaults: the commented default file; show: the effective settings, secrets "
        "masked, each with where it came from",
    )
    uploader.add_arguments(sub.add_parser("upload", help="upload files to a queue via the API"))

    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    create = user.add_parser("create", help="create a user")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=sorted(GROUP_IDS))
    create.add_argument("--password", help="prompted for when omitted")
    create.add_argument("--email", default="")
    create.add_argument("--queue", type=int, action="append", default=[], help="assign to queue id")
    password = user.add_parser("password", help="set a user's password")
    password.add_argument("username")
    password.add_argument("--password", help="prompted for when omitted")

    queue = sub.add_parser("queue", help="manage queues").add_subparsers(
        dest="action", required=True
    )
    queue.add_parser("list", help="list queues with their inbox addresses")
    queue_create = queue.add_parser("create", help="create a queue with an inbox")
    queue_create.add_argument("--name", required=True)
    queue_create.add_argument(
        "--schema", type=int, help="schema id (default: a new invoice schema)"
    )
    return parser


def _ask_password(given: str | None) -> str:
    if given:
        return given
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Password (again): "):
        raise SystemExit("postroom: passwords do not match")
    if not first:
        raise SystemExit("postroom: empty password")
    return first


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
        print("               (generated now and shown once: store it safely)")
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


async def _with_db(settings: Settings, work: str, args: argparse.Namespace) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # where the SQLite file lives
    db = Database(settings.database_url)
    try:
        await apply_migrations(db)
        if work == "user create":
            await _user_create(db, args)
        elif work == "user password":
            await _user_password(db, args)
        elif work == "queue list":
            await _queue_list(db)
        elif work == "queue create":
            await _queue_create(db, settings, args)
    finally:
        await db.dispose()


async def _user_create(db: Database, args: argparse.Namespace) -> None:
    password = _ask_password(args.password)
    async with db.transaction() as conn:
        org = (await conn.execute(sa.select(t.organizations.c.id).order_by("id").limit(1))).first()
        if org is None:
            raise SystemExit("postroom: no organization yet; run `postroom serve` once first")
        taken = await conn.execute(
            sa.select(t.users.c.id).where(t.users.c.username == args.username)
        )
        if taken.first() is not None:
            raise SystemExit(f"postroom: user {args.username!r} already exists")
        for queue_id in args.queue:
            found = await conn.execute(
                sa.select(t.queues.c.id).where(
                    t.queues.c.id == queue_id, t.queues.c.organization_id == org.id
                )
            )
            if found.first() is None:
                raise SystemExit(f"postroom: no queue {queue_id}")
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


async def _user_password(db: Database, args: argparse.Namespace) -> None:
    password = _ask_password(args.password)
    async with db.transaction() as conn:
        result = await conn.execute(
            t.users.update()
            .where(t.users.c.username == args.username)
            .values(password_hash=accounts.hash_password(password))
        )
        if result.rowcount == 0:
            raise SystemExit(f"postroom: no user {args.username!r}")
        user_id = (
            await conn.execute(sa.select(t.users.c.id).where(t.users.c.username == args.username))
        ).scalar_one()
        # A new password revokes the tokens issued under the old one.
        await conn.execute(t.tokens.delete().where(t.tokens.c.user_id == user_id))
    print(f"password of {args.username} changed; its tokens were revoked")


async def _queue_list(db: Database) -> None:
    q, i = t.queues, t.inboxes
    async with db.reading() as conn:
        rows = await conn.execute(
            sa.select(q.c.id, q.c.name, q.c.status, i.c.email)
            .select_from(q.outerjoin(i, i.c.id == q.c.inbox_id))
            .order_by(q.c.id)
        )
        for row in rows:
            print(f"{row.id}\t{row.name}\t{row.status}\t{row.email or '-'}")


async def _queue_create(db: Database, settings: Settings, args: argparse.Namespace) -> None:
    from postroom.domain.inboxes import create_inbox, email_prefix_from
    from postroom.domain.queue_templates import load_template
    from postroom.domain.queues import insert_queue
    from postroom.domain.resources import insert_returning_id

    name = args.name.strip()
    if not name or len(name) > 255:
        raise SystemExit("postroom: --name must be 1 to 255 characters")
    async with db.transaction() as conn:
        org = (await conn.execute(sa.select(t.organizations.c.id).order_by("id").limit(1))).first()
        if org is None:
            raise SystemExit("postroom: no organization yet; run `postroom serve` once first")
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
            raise SystemExit(f"postroom: no schema with id {schema_id}")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "upload":  # a client of a running server: needs no server settings
        return uploader.main(args)
    if args.command == "config" and args.what == "defaults":
        sys.stdout.write(render_default_toml())
        return 0
    try:
        settings, sources = load_settings_and_sources(args.config)
    except ConfigError as error:
        print(f"postroom: configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "config":
        sys.stdout.write(render_effective(settings, sources))
        return 0
    configure_logging(settings.log)
    try:
        if args.command == "serve":
            asyncio.run(_serve(settings))
        elif args.command == "migrate":
            asyncio.run(_migrate(settings))
        else:
            asyncio.run(_with_db(settings, f"{args.command} {args.action}", args))
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        print(f"postroom: {error}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as error:
        # An unreachable or unusable database is an operator's problem: one line, no traceback.
        reason = str(getattr(error, "orig", None) or error).splitlines()[0]
        url = sa.engine.make_url(settings.database_url).render_as_string(hide_password=True)
        print(f"postroom: database error: {reason} (database.url = {url})", file=sys.stderr)
        return 1
    return 0


async def _migrate(settings: Settings) -> None:
    db = Database(settings.database_url)
    try:
        await apply_migrations(db)
    finally:
        await db.dispose()
    print("database is up to date")
