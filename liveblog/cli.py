"""The ``liveblog`` command: serve the site, add editors, issue API tokens, seed a demo."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import uvicorn
from pydantic import ValidationError

from liveblog import __version__, auth, schema, store
from liveblog.app import create_app
from liveblog.db import Database
from liveblog.gc_tuning import tune_for_serving
from liveblog.hub import backend_from_url
from liveblog.metrics import Address
from liveblog.models import Role, User
from liveblog.server import log_config, uvicorn_options
from liveblog.settings import Settings
from liveblog.state import Liveblog

FACTORY = "liveblog.app:app_from_environment"
# Readers of a breaking story arrive together (a push alert): while the worker is busy
# answering the first thousands, the rest wait in the kernel's accept queue, and past
# its length they are dropped and retry a second later. uvicorn's default is 2048; the
# kernel silently caps whatever is asked at net.core.somaxconn (docs/scaling.md).
BACKLOG = 65535
T = TypeVar("T")


class CommandError(Exception):
    """A failure to report in one line, without a traceback."""

    def __init__(self, message: str, *, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# --- plumbing ------------------------------------------------------------------------


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError("port must be between 0 and 65535")
    return port


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    fields = ("data_dir", "database_url", "broadcast_url")
    found = {field: getattr(args, field) for field in fields if getattr(args, field) is not None}
    if getattr(args, "migrate", False):
        found["migrate"] = True
    return found


def _load_settings(args: argparse.Namespace, *, export: bool = False) -> Settings:
    overrides = _overrides(args)
    try:
        if export:
            # Through the environment rather than as arguments, so the processes uvicorn
            # starts for --reload and --workers (which build the app from the
            # environment) see the same settings.
            for field, value in overrides.items():
                os.environ[f"LIVEBLOG_{field.upper()}"] = str(value)
            return Settings()
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"LIVEBLOG_{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise CommandError(f"invalid settings: {problems}", status=2) from None


async def _in_app(settings: Settings, work: Callable[[Liveblog], Awaitable[T]]) -> T:
    """Run ``work`` against the app's own resources, opened and closed by its lifespan."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        liveblog: Liveblog = app.state.liveblog
        return await work(liveblog)


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "localhost"
    return f"[{host}]" if ":" in host else host


# --- commands ------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load_settings(args, export=True)
    if args.reload and args.workers > 1:
        raise CommandError("--reload runs a single process: drop --workers or --reload", status=2)
    if args.workers > 1 and settings.broadcast_url.startswith("memory://"):
        raise CommandError(
            f"--workers {args.workers} needs a broadcast backend shared between processes, "
            "but the broadcast URL is memory://, which only reaches readers connected to "
            "the same process: updates posted through one worker would never reach readers "
            "of another. Run a single worker, or set LIVEBLOG_BROADCAST_URL to a redis:// "
            "or postgres:// URL.",
            status=2,
        )
    try:
        backend_from_url(settings.broadcast_url)  # its client library is installed?
    except ValueError as exc:
        raise CommandError(str(exc), status=2) from None
    asyncio.run(_check_schema(settings))
    if args.workers > 1 and settings.metrics_address is not None:
        # Each worker is a process of its own, with its own metrics, and uvicorn gives
        # none of them a number: each takes the first free port of the range, and each
        # is scraped as a target of its own (docs/operations.md).
        address = Address.parse(settings.metrics_address).widened(args.workers)
        os.environ["LIVEBLOG_METRICS_ADDRESS"] = str(address)
        settings = Settings()
    # With --reload or --workers uvicorn builds the app in new processes from the
    # environment (FACTORY); the protocol's limits travel there pickled inside these
    # options, taken from this same environment: the overrides were exported above, so
    # `settings` is what each process's own Settings() reads.
    options = uvicorn_options(
        settings,
        host=args.host,
        port=args.port,
        log_level="info",
        log_config=log_config(settings.log_format),
        backlog=args.backlog,
    )
    if args.reload or args.workers > 1:
        uvicorn.run(FACTORY, factory=True, reload=args.reload, workers=args.workers, **options)
    else:
        tune_for_serving()
        uvicorn.run(create_app(settings), **options)
    return 0


async def _check_schema(settings: Settings) -> None:
    """Refuse to serve an outdated database with a one-line message, not a traceback."""
    db = Database(settings.sqlalchemy_url())
    try:
        await schema.ensure_current(db.engine, migrate=settings.migrate)
    except schema.SchemaOutOfDate as exc:
        raise CommandError(str(exc), status=3) from None
    finally:
        await db.close()


def cmd_db(args: argparse.Namespace) -> int:
    settings = _load_settings(args)

    async def run() -> str:
        db = Database(settings.sqlalchemy_url())
        try:
            before = await schema.schema_state(db.engine)
            if args.action == "upgrade":
                if before == schema.SchemaState.unknown:
                    raise CommandError(
                        "the database is at a schema revision this version does not know"
                    )
                await schema.upgrade(db.engine)
                after = await schema.schema_state(db.engine)
                return f"schema: {before.value} -> {after.value}"
            return f"schema: {before.value}"
        finally:
            await db.close()

    print(asyncio.run(run()))
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        try:
            password = getpass.getpass("Password: ")
            again = getpass.getpass("Password (again): ")
        except EOFError:
            raise CommandError("no password given") from None
        if password != again:
            raise CommandError("the passwords do not match")
        return password
    # Piped input (scripts, provisioning): the first line is the password.
    return sys.stdin.readline().rstrip("\r\n")


def cmd_createuser(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    password = _read_password()

    async def create(liveblog: Liveblog) -> User:
        async with liveblog.db.transaction() as session:
            return await auth.create_user(
                session,
                username=args.username,
                password=password,
                role=Role(args.role),
                display_name=args.display_name,
            )

    try:
        user = asyncio.run(_in_app(settings, create))
    except auth.UserError as exc:
        raise CommandError(str(exc)) from None
    print(f"created {user.role.value} {user.username!r}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    settings = _load_settings(args)
    username = args.username.strip().lower()

    async def issue(liveblog: Liveblog) -> str:
        async with liveblog.db.transaction() as session:
            user = await store.get_user_by_username(session, username)
            if user is None:
                raise CommandError(f"no such user {username!r}")
            if not user.active:
                raise CommandError(f"user {username!r} is inactive")
            return await auth.create_api_token(
                session, user, name=args.label, read_only=args.read_only
            )

    # Only the token goes to stdout, so TOKEN=$(liveblog token NAME) captures it.
    print(asyncio.run(_in_app(settings, issue)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from liveblog import transfer

    settings = _load_settings(args)

    async def export(liveblog: Liveblog) -> dict[str, Any]:
        async with liveblog.db.session() as session:
            return await transfer.export_story(
                session,
                args.slug,
                media_dir=settings.media_dir(),
                media_url=settings.media_url,
            )

    try:
        document = asyncio.run(_in_app(settings, export))
    except transfer.TransferError as exc:
        raise CommandError(str(exc)) from None
    sys.stdout.write(transfer.dumps(document, compact=args.compact) + "\n")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from liveblog import transfer
    from liveblog.importers import wordpress

    settings = _load_settings(args)
    try:
        if args.file == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as file:
                raw = file.read()
    except OSError as exc:
        raise CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    source = args.source
    if source == "auto":
        source = "wordpress" if wordpress.looks_like_wxr(raw) else "liveblog"

    async def run(liveblog: Liveblog) -> transfer.Imported:
        if source == "wordpress":
            document = wordpress.to_document(raw, liveblog.renderer, post=args.post)
        else:
            document = transfer.load(raw)
        async with liveblog.db.transaction() as session:
            return await transfer.import_story(session, document, media_dir=settings.media_dir())

    try:
        imported = asyncio.run(_in_app(settings, run))
    except (transfer.TransferError, wordpress.WxrError) as exc:
        raise CommandError(str(exc)) from None
    print(imported.summary())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    # Imported here: the demo text is only needed by this command.
    from liveblog.demo import DEMO_SLUG, seed_demo

    settings = _load_settings(args)
    username, password = asyncio.run(_in_app(settings, seed_demo))
    app = create_app(settings)
    base = f"http://{_display_host(args.host)}:{args.port}"
    print(f"Reader: {base}{app.url_path_for('story_page', slug=DEMO_SLUG)}")
    print(f"Desk:   {base}{app.url_path_for('story_desk_page', slug=DEMO_SLUG)}")
    print(f"Login:  username {username}, password {password}")
    sys.stdout.flush()
    if not args.no_serve:
        uvicorn.run(
            app,
            **uvicorn_options(
                settings,
                host=args.host,
                port=args.port,
                log_level="info",
                log_config=log_config(settings.log_format),
            ),
        )
    return 0


# --- the parser ----------------------------------------------------------------------


def _settings_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (override LIVEBLOG_* environment variables)")
    group.add_argument("--data-dir", metavar="PATH", help="LIVEBLOG_DATA_DIR")
    group.add_argument("--database-url", metavar="URL", help="LIVEBLOG_DATABASE_URL")
    group.add_argument("--broadcast-url", metavar="URL", help="LIVEBLOG_BROADCAST_URL")
    return parent


def _address_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=_port, default=8000, help="port to listen on")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liveblog", description="A live-updates blog engine for breaking news."
    )
    parser.add_argument("--version", action="version", version=f"liveblog {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    settings = _settings_flags()

    serve = commands.add_parser("serve", parents=[settings], help="run the web server")
    _address_flags(serve)
    serve.add_argument("--reload", action="store_true", help="restart when the code changes")
    serve.add_argument("--workers", type=_positive, default=1, metavar="N", help="worker processes")
    serve.add_argument(
        "--migrate", action="store_true", help="apply pending schema migrations first"
    )
    serve.add_argument(
        "--backlog",
        type=_positive,
        default=BACKLOG,
        metavar="N",
        help="connections waiting to be accepted (the kernel caps it at net.core.somaxconn; "
        f"default {BACKLOG})",
    )
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", parents=[settings], help="database schema: status, upgrade")
    db.add_argument("action", choices=["status", "upgrade"])
    db.set_defaults(handler=cmd_db)

    createuser = commands.add_parser(
        "createuser",
        parents=[settings],
        help="add an editor (password from a prompt, or the first line of stdin)",
    )
    createuser.add_argument("username", metavar="NAME")
    createuser.add_argument("--role", choices=[role.value for role in Role], required=True)
    createuser.add_argument("--display-name", metavar="TEXT")
    createuser.set_defaults(handler=cmd_createuser)

    token = commands.add_parser(
        "token", parents=[settings], help="print a new API token for a user"
    )
    token.add_argument("username", metavar="NAME")
    token.add_argument("--name", dest="label", default="", metavar="LABEL", help="what it is for")
    token.add_argument("--read-only", action="store_true", help="allow reading only")
    token.set_defaults(handler=cmd_token)

    export = commands.add_parser(
        "export", parents=[settings], help="write a story as one JSON document to stdout"
    )
    export.add_argument("slug", metavar="SLUG")
    export.add_argument("--compact", action="store_true", help="one line, no indentation")
    export.set_defaults(handler=cmd_export)

    import_ = commands.add_parser(
        "import",
        parents=[settings],
        help="create a story from an export document (or a WordPress WXR export)",
    )
    import_.add_argument("file", metavar="FILE", help="the document; - for standard input")
    import_.add_argument(
        "--from",
        dest="source",
        choices=["auto", "liveblog", "wordpress"],
        default="auto",
        help="the document's kind (auto: a WXR file is recognised by its XML)",
    )
    import_.add_argument(
        "--post", metavar="ID|SLUG", help="WordPress: which liveblog post, if there are several"
    )
    import_.set_defaults(handler=cmd_import)

    demo = commands.add_parser(
        "demo", parents=[settings], help="create a demo editor and live story, then serve"
    )
    _address_flags(demo)
    demo.add_argument("--no-serve", action="store_true", help="seed the demo, don't serve")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CommandError as exc:
        print(f"liveblog {args.command}: error: {exc}", file=sys.stderr)
        return exc.status


if __name__ == "__main__":
    raise SystemExit(main())
