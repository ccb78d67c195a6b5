"""`queue-server`: serve (the default), migrate, check-config, config export/import,
create-admin, backup, restore, facts, demo-history, sms-gateway, vapid-key, node-token,
release-node, simulate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from queue_server.settings import Settings, load_settings

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# A keep-alive connection idle this long is closed. It must outlive nginx's upstream
# `keepalive_timeout` (60 s in deploy/nginx): with uvicorn's 5 s, the server closed pooled
# connections at the moment nginx sent a request on them, and a POST got 502.
KEEP_ALIVE_S = 75
PRIVATE_UMASK = 0o077  # the database, its journal and the secret key: owner only (0600)


def _keep_files_private(settings: Any) -> None:
    """Files this process creates are the owner's alone, and an older SQLite file made
    world-readable is closed up too."""
    os.umask(PRIVATE_UMASK)
    url = settings.resolved_database_url
    if url.startswith("sqlite+aiosqlite:///"):
        database = Path(url.removeprefix("sqlite+aiosqlite:///"))
        for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm"))):
            if path.exists():
                path.chmod(0o600)


def serving_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's settings for `serve` (beside the app, host and port)."""
    return {
        "log_level": settings.log_level,
        "log_config": None,  # our handler (configure_logging) formats and scrubs every line
        "access_log": False,  # the app logs requests by route template (ops.middleware)
        "ws_per_message_deflate": False,  # doubles idle memory, slows small broadcasts
        # uvicorn would believe X-Forwarded-For from 127.0.0.1; EdgeMiddleware reads it
        # instead, and only from RIGI_TRUSTED_PROXIES.
        "proxy_headers": False,
        # Clients send hellos, acks and pongs: a WebSocket message has the HTTP body's bound,
        # not uvicorn's 16 MiB.
        "ws_max_size": settings.max_body_bytes,
        # No protocol pings of uvicorn's (every 20 s): the feeds' own heartbeat
        # (RIGI_HEARTBEAT_S, `Hub.beat`) already pings every client and drops one that does not
        # answer twice. Both ran: with 1,000 displays, sending uvicorn's pings alone was 1.3% of
        # the servers' interpreter time in the compressed national day, before their pongs
        # (py-spy, docs/benchmarks.md, issue 18, n18day).
        "ws_ping_interval": None,
        "timeout_graceful_shutdown": 10,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from queue_server.app import create_app
    from queue_server.ops.heap import frozen_start_up
    from queue_server.ops.logs import configure_logging

    settings = load_settings()
    _keep_files_private(settings)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    app.state.extensions.append(frozen_start_up)
    uvicorn.run(app, host=args.host, port=args.port, **serving_options(settings))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from queue_server.store.migrate import migrate_blocking

    settings = load_settings()
    _keep_files_private(settings)
    migrate_blocking(settings.resolved_database_url)
    print(f"database is up to date: {settings.resolved_database_url.split('@')[-1]}")
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from queue_server.catalog.loader import check_config

    directory = args.directory or load_settings().config
    problems = check_config(Path(directory))
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{directory}: configuration is valid")
    return 1 if problems else 0


def _config_files(args: argparse.Namespace) -> int:
    from queue_server.organisation.files import export_directory, import_directory

    run = export_directory if args.config_command == "export" else import_directory
    return run(load_settings(), args.directory)


def _create_admin(args: argparse.Namespace) -> int:
    """The first admin, from the command line: there is no default password anywhere."""
    import asyncio
    import getpass

    from queue_server.access.accounts import Accounts
    from queue_server.access.principal import Role
    from queue_server.errors import RigiError
    from queue_server.store.database import Database
    from queue_server.store.migrate import migrate
    from queue_server.store.queue import utc_now

    settings = load_settings()
    if args.password_stdin or not sys.stdin.isatty():
        # `echo "$PW" | queue-server create-admin x`: a pipe has no terminal to prompt on.
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass("Password for the new admin: ")
            again = getpass.getpass("Again: ")
        except (EOFError, KeyboardInterrupt):
            print("\nNo admin created.", file=sys.stderr)
            return 1
        if again != password:
            print("The passwords differ.", file=sys.stderr)
            return 1
    if not password:
        print("No password given: no admin created.", file=sys.stderr)
        return 1
    _keep_files_private(settings)

    async def _create() -> None:
        database = Database(settings.resolved_database_url)
        try:
            await migrate(database)
            await Accounts(database, utc_now).create_user(
                args.username, password, Role.ADMIN, None, by="cli"
            )
        finally:
            await database.dispose()

    try:
        asyncio.run(_create())
    except RigiError as error:
        print(error.message, file=sys.stderr)
        return 1
    print(f"admin {args.username!r} created")
    return 0


def _sms_gateway(args: argparse.Namespace) -> int:
    """The local SMS gateway (tests, demos): tokens from the environment, never arguments."""
    import uvicorn

    from queue_server.notify.gateway import gateway_app

    app = gateway_app(
        token=os.environ.get("RIGI_SMS_GATEWAY_TOKEN"),
        server_url=args.server_url,
        inbound_token=os.environ.get("RIGI_NOTIFY_INBOUND_TOKEN"),
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def _vapid_key(args: argparse.Namespace) -> int:
    """A new VAPID key for Web Push, printed once as the setting that uses it."""
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec

    number = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
    key = base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()
    print(f"RIGI_NOTIFY_PUSH_URL='webpush://?subject=mailto:{args.contact}&key={key}'")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from queue_server.ops.backup import BackupRefused, backup

    try:
        outcome = backup(load_settings().resolved_database_url, Path(args.out), run=not args.print)
    except BackupRefused as refused:
        print(f"{refused.code}: {refused.message}", file=sys.stderr)
        return 1
    return _report(outcome)


def _restore(args: argparse.Namespace) -> int:
    import asyncio

    from queue_server.ops.backup import BackupRefused, new_epochs, restore

    url = load_settings().resolved_database_url
    if args.new_epochs:
        print(f"{asyncio.run(new_epochs(url))} branch(es) on a new epoch")
        return 0
    if args.source is None:
        print("restore: name the backup file (or pass --new-epochs)", file=sys.stderr)
        return 2
    try:
        outcome = restore(url, Path(args.source), force=args.force, run=not args.print)
    except BackupRefused as refused:
        print(f"{refused.code}: {refused.message}", file=sys.stderr)
        return 1
    return _report(outcome)


def _report(outcome: Any) -> int:
    print(outcome.message)
    if outcome.command:
        print(" ".join(outcome.command))
    return 0


@contextlib.asynccontextmanager
async def _migrated(settings: Any) -> AsyncIterator[Any]:
    """The configured database, migrated, disposed of afterwards (a one-shot command's)."""
    from queue_server.store.database import Database
    from queue_server.store.migrate import migrate

    database = Database(settings.resolved_database_url)
    try:
        await migrate(database)
        yield database
    finally:
        await database.dispose()


def _facts(args: argparse.Namespace) -> int:
    """`facts rebuild`: make visit facts, rollups and counter time again from the event log."""
    import asyncio

    from queue_server.catalog.loader import load_catalog
    from queue_server.store.reports.projector import LogPruned
    from queue_server.store.reports.runner import projected_branches, rebuild

    settings = load_settings()

    async def _rebuild() -> dict[str, int]:
        async with _migrated(settings) as database:
            async with database.read() as conn:
                branches = args.branch or await projected_branches(conn)
            return await rebuild(
                database, load_catalog(settings.config), branches, allow_partial=args.allow_partial
            )

    try:
        applied = asyncio.run(_rebuild())
    except LogPruned as error:
        print(f"{error} (--allow-partial rebuilds from what is kept)", file=sys.stderr)
        return 1
    for branch, count in applied.items():
        print(f"{branch}: {count} events applied")
    return 0


def _demo_history(args: argparse.Namespace) -> int:
    """`demo-history --days N`: simulated past days, then their report facts."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from queue_server.catalog.loader import load_catalog
    from queue_server.domain.numbering import local_day
    from queue_server.reporting.history import HistoryExists, fill_history
    from queue_server.store.database import Database
    from queue_server.store.migrate import migrate
    from queue_server.store.reports.runner import catch_up

    settings = load_settings()
    catalog = load_catalog(settings.config)
    branches = args.branches.split(",") if args.branches else sorted(catalog.branches)
    today = local_day(datetime.now(UTC))
    days = [today - timedelta(days=n) for n in range(args.days, 0, -1)]

    async def _fill() -> dict[str, int]:
        database = Database(settings.resolved_database_url)
        try:
            await migrate(database)
            written = await fill_history(database, catalog, branches, days, args.seed)
            for branch in branches:
                await catch_up(database, catalog, branch)
            return written
        finally:
            await database.dispose()

    try:
        written = asyncio.run(_fill())
    except HistoryExists as error:
        print(f"{error}: demo history is written once, on days without tickets", file=sys.stderr)
        return 1
    for branch, visits in written.items():
        print(f"{branch}: {visits} visits over {args.days} days")
    return 0


def _node_token(args: argparse.Namespace) -> int:
    """Make a branch node-owned and print its node's token once (docs/offline.md)."""
    from queue_server.catalog.loader import load_catalog
    from queue_server.errors import RigiError
    from queue_server.replication.routes import make_node_token

    settings = load_settings()
    try:
        load_catalog(settings.config).branch(args.branch)
    except RigiError as exc:
        raise SystemExit(exc.message) from None

    async def _create() -> str:
        async with _migrated(settings) as database:
            _, token = await make_node_token(database, args.branch, args.name, "admin:cli")
            return token

    token = asyncio.run(_create())
    print(f"{args.branch} is now served by its node; its token (shown once):\n{token}")
    return 0


def _release_node(args: argparse.Namespace) -> int:
    """Take a branch back from its node (docs/offline.md): central serves it from the last
    event the node shipped. Refused while the node is connected, unless `--force`."""
    from queue_server.errors import RigiError
    from queue_server.replication.routes import take_back

    settings = load_settings()

    async def _release() -> dict[str, object]:
        async with _migrated(settings) as database:
            done = await take_back(database, args.branch, stale_after_s=settings.node_stale_s,
                                   force=args.force, by="admin:cli")  # fmt: skip
            return done.to_dict()

    try:
        done = asyncio.run(_release())
    except RigiError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    print(
        f"{args.branch} is served by central again from event {done['seq']}; "
        f"{done['unshipped_events']} event(s) the node never shipped are lost with it; "
        f"{done['revoked_tokens']} node token(s) revoked"
    )
    return 0


def _simulate(argv: list[str]) -> int:
    from queue_server.simulation.cli import main as simulate

    return simulate(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="queue-server", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the server (default)")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.set_defaults(run=_serve)
    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        run=_migrate
    )
    check = commands.add_parser("check-config", help="validate the configuration and exit")
    check.add_argument("directory", nargs="?", default=None)
    check.set_defaults(run=_check_config)
    config = commands.add_parser("config", help="export or import the organisation as files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    for name, what in (
        ("export", "write the organisation the database serves into a new directory"),
        ("import", "check a directory like check-config and store it as the next version"),
    ):
        files = config_commands.add_parser(name, help=what)
        files.add_argument("directory", type=Path)
        files.set_defaults(run=_config_files)
    admin = commands.add_parser("create-admin", help="create an administrator account")
    admin.add_argument("username")
    admin.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    admin.set_defaults(run=_create_admin)
    gateway = commands.add_parser("sms-gateway", help="run a local SMS gateway (tests, demos)")
    gateway.add_argument("--host", default=DEFAULT_HOST)
    gateway.add_argument("--port", type=int, default=8025)
    gateway.add_argument("--server-url", default=None, help="where replies are posted")
    gateway.set_defaults(run=_sms_gateway)
    vapid = commands.add_parser("vapid-key", help="make a VAPID key for Web Push")
    vapid.add_argument("--contact", default="ops@example.ge", help="who push services may write to")
    vapid.set_defaults(run=_vapid_key)
    backup = commands.add_parser("backup", help="copy the database to a file, while serving")
    backup.add_argument("out", help="the backup file to write (must not exist)")
    backup.add_argument("--print", action="store_true", help="PostgreSQL: print the recipe only")
    backup.set_defaults(run=_backup)
    restore = commands.add_parser("restore", help="restore a backup into the configured database")
    restore.add_argument("source", nargs="?", default=None, help="the backup file")
    restore.add_argument("--force", action="store_true", help="overwrite an existing database")
    restore.add_argument("--print", action="store_true", help="PostgreSQL: print the recipe only")
    restore.add_argument(
        "--new-epochs", action="store_true", help="only start every branch on a new epoch"
    )
    restore.set_defaults(run=_restore)
    facts = commands.add_parser("facts", help="report facts: rebuild them from the event log")
    facts.add_argument("action", choices=["rebuild"])
    facts.add_argument("--branch", action="append", help="only this branch (repeatable)")
    facts.add_argument("--allow-partial", action="store_true", help="rebuild a pruned log too")
    facts.set_defaults(run=_facts)
    history = commands.add_parser("demo-history", help="fill past days from the simulator")
    history.add_argument("--days", type=int, default=30)
    history.add_argument("--branches", help="comma-separated branch ids (default: all)")
    history.add_argument("--seed", type=int, default=1)
    history.set_defaults(run=_demo_history)
    node = commands.add_parser("node-token", help="make a branch node-owned; print its token")
    node.add_argument("branch")
    node.add_argument("--name", default="branch node")
    node.set_defaults(run=_node_token)
    release = commands.add_parser("release-node", help="take a branch back from its node")
    release.add_argument("branch")
    release.add_argument("--force", action="store_true", help="even while it is connected")
    release.set_defaults(run=_release_node)
    # Listed here for --help; main() hands its arguments, options first too, to its own parser.
    commands.add_parser("simulate", help="simulate a day of a branch", add_help=False)
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["simulate"]:
        return _simulate(words[1:])
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or sys.argv[1:])])
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
