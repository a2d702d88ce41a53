"""The command line's grammar: every subcommand, option and help text, in one parser tree.

The global options (`--config`, `--create`) are accepted before or after the subcommand: each
leaf parser repeats them with a suppressed default, so a value given after the subcommand wins
and one given before it is not overwritten. A mistake on the command line is one line on stderr
and exit 2, never a usage dump.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from postroom import __version__
from postroom.client import upload_command as uploader
from postroom.domain.access import GROUP_IDS

SHELLS = ("bash", "zsh")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (`postroom user: error: ... (see --help)`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    keep = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="path of postroom.toml (default: $POSTROOM_CONFIG)",
        **({"default": None} if top else keep),
    )
    parser.add_argument(
        "--create",
        action="store_true",
        help="let an admin command create (and migrate) a database that does not exist yet",
        **({"default": False} if top else keep),
    )


def _leaf(sub: argparse._SubParsersAction[Parser], name: str, help_text: str) -> Parser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    _global_options(parser, top=False)
    return parser


def _password_options(parser: Parser) -> None:
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--password", help="the password (visible in the process list: prefer stdin)"
    )
    given.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (the default without a "
        "terminal; with one, it is prompted for twice)",
    )


def build_parser() -> Parser:
    parser = Parser(
        prog="postroom",
        description="Postroom document intake gateway",
        epilog="exit codes: 0 done, 1 failed (one line says why), 2 a mistake in the command line "
        "or the configuration, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"postroom {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _leaf(sub, "serve", "run HTTP, SMTP and the pipeline (migrates first)")
    _leaf(sub, "migrate", "apply database migrations and exit (creates the database if needed)")
    config = _leaf(sub, "config", "print the default or the effective configuration")
    config.add_argument(
        "what",
        nargs="?",
        choices=("defaults", "show"),
        default="defaults",
        help="defaults: the commented default file; show: the effective settings, secrets "
        "masked, each with where it came from",
    )
    upload = _leaf(sub, "upload", "upload files to a queue via the API")
    uploader.add_arguments(upload)

    users = sub.add_parser("user", help="manage users", description="manage users")
    user = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = _leaf(user, "create", "create a user")
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=sorted(GROUP_IDS))
    _password_options(create)
    create.add_argument("--email", default="")
    create.add_argument("--queue", type=int, action="append", default=[], help="assign to queue id")
    password = _leaf(user, "password", "set a user's password (revokes the user's tokens)")
    password.add_argument("username")
    _password_options(password)

    queues = sub.add_parser("queue", help="manage queues", description="manage queues")
    queue = queues.add_subparsers(dest="action", required=True, metavar="ACTION")
    _leaf(queue, "list", "list queues with their inbox addresses")
    queue_create = _leaf(queue, "create", "create a queue with an inbox")
    queue_create.add_argument("--name", required=True)
    queue_create.add_argument(
        "--schema", type=int, help="schema id (default: a new invoice schema)"
    )

    completion = _leaf(sub, "completion", "print a shell completion script")
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    return parser
