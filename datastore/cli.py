"""The ``datastore`` command: parse arguments, call the library, print. Nothing else lives here.

Exit codes: 0 success, 1 the blueprint has errors (lint/serve), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from datastore import __version__
from datastore.config import ConfigError, Settings, add_arguments, load_settings

SERVE_SETTINGS = (
    "database_url",
    "database_pooler",
    "read_database",
    "host",
    "port",
    "workers",
    "migrate",
    "max_body_bytes",
    "max_json_depth",
    "default_limit",
    "max_limit",
    "max_sort_keys",
    "max_query_nodes",
    "statement_timeout_ms",
    "pool_size",
    "queue_max_attempts",
    "jwt_secret",
    "jwt_public_key",
    "jwks",
    "jwt_audience",
    "jwt_issuer",
    "jwt_leeway",
    "jwt_allow_no_exp",
    "dev",
    "admin",
    "log_level",
    "cors_origin",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datastore",
        description="Serve an OpenAPI blueprint as a validated, secured document datastore.",
    )
    parser.add_argument("--version", action="version", version=f"datastore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="serve a blueprint over HTTP")
    serve.add_argument("blueprint", nargs="?", help="the blueprint to serve at /")
    serve.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="NAME=BLUEPRINT",
        help="serve BLUEPRINT under /NAME (repeatable; instead of a single blueprint)",
    )
    serve.add_argument(
        "--reload", action="store_true", help="restart when the blueprint or code changes"
    )
    add_arguments(serve, SERVE_SETTINGS)

    lint = commands.add_parser("lint", help="check blueprints; exit 1 when any has errors")
    lint.add_argument("blueprints", nargs="+", help="blueprint files")
    lint.add_argument("--format", choices=("text", "json", "github"), default="text")
    lint.add_argument("--strict", action="store_true", help="warnings fail too")

    bundle = commands.add_parser("bundle", help="write a blueprint with every file $ref inlined")
    bundle.add_argument("blueprint")
    bundle.add_argument("-o", "--output", help="output file (default: standard output)")

    diff = commands.add_parser(
        "diff", help="classify every change between two blueprints (breaking, data, access...)"
    )
    diff.add_argument(
        "blueprints",
        nargs="+",
        metavar="OLD NEW",
        help="the blueprint before and after: files or git:REF:path (only NEW with "
        "--against-database)",
    )
    diff.add_argument(
        "--against-database",
        metavar="URL",
        help="compare NEW with the blueprint last served on this database",
    )
    diff.add_argument("--space", default="default", help="with --against-database (default)")
    diff.add_argument("--format", choices=("text", "json", "github"), default="text")
    diff.add_argument(
        "--fail-on",
        choices=("breaking", "any", "none"),
        default="breaking",
        help="exit 1 when a change at or above this level is found (default: breaking)",
    )

    check = commands.add_parser(
        "check-data",
        help="check every stored document against a blueprint; exit 1 when any is invalid",
    )
    check.add_argument("blueprint")
    check.add_argument("--collection", help="only this collection path (users/u1/notes)")
    check.add_argument("--space", default="default", help="the space to check (default: default)")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument(
        "--examples", type=int, default=10, help="invalid documents listed per collection (10)"
    )
    add_arguments(check, ("database_url", "database_pooler"))

    worker = commands.add_parser("worker", help="process queued jobs")
    worker.add_argument("blueprint", help="the blueprint whose queues to work on")
    worker.add_argument(
        "--handler",
        action="append",
        default=[],
        metavar="TOPIC=MODULE:FUNCTION",
        help="run a Python callable for a topic's jobs (repeatable)",
    )
    worker.add_argument(
        "--webhook",
        action="append",
        default=[],
        metavar="TOPIC=URL",
        help="POST a topic's jobs as JSON to a URL (repeatable)",
    )
    worker.add_argument(
        "--space", default="default", help="the space whose queues to work on (default: default)"
    )
    worker.add_argument(
        "--visibility-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long a job stays claimed before another worker may retry it (default 300)",
    )
    worker.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="wait between polls of an empty queue (default 0.5)",
    )
    add_arguments(worker, ("database_url", "database_pooler", "log_level"))

    keys = commands.add_parser("keys", help="manage API keys (x-apikey)")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    key_add = key_commands.add_parser("add", help="create a key and print it (only this once)")
    key_add.add_argument("--readonly", action="store_true", help="the key may only read (GET)")
    key_add.add_argument("--space", default="default", help="the space the key is for")
    key_list = key_commands.add_parser("list", help="list keys (never the keys themselves)")
    key_list.add_argument("--space", default=None, help="only this space's keys")
    key_revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    key_revoke.add_argument("key_id")
    for sub in (key_add, key_list, key_revoke):
        add_arguments(sub, ("database_url", "database_pooler"))

    token = commands.add_parser("token", help="print a signed JWT for local use")
    token.add_argument("--secret", help="HMAC secret (default: DATASTORE_JWT_SECRET)")
    token.add_argument("--claims", default="{}", help='claims as JSON, e.g. \'{"sub": "u1"}\'')
    token.add_argument(
        "--expires",
        default="1h",
        help="lifetime: 30s, 15m, 1h, 7d (default 1h), or 'never': no exp claim, which servers "
        "accept only with --jwt-allow-no-exp",
    )
    token.add_argument("--algorithm", default="HS256", choices=("HS256", "HS384", "HS512"))

    importer = commands.add_parser(
        "import", help="load documents from JSON Lines, a JSON array or CSV into a collection"
    )
    importer.add_argument("collection", help="collection path, e.g. events or users/u1/events")
    importer.add_argument("file")
    importer.add_argument("--space", default="default")
    importer.add_argument("--blueprint", help="validate against this blueprint's schema")
    importer.add_argument("--on-error", choices=("abort", "skip"), default="abort")
    importer.add_argument("--id-property", default="_id", help="the field holding ids (_id)")
    add_arguments(importer, ("database_url", "database_pooler"))
    exporter = commands.add_parser("export", help="write a collection as JSON Lines or JSON")
    exporter.add_argument("collection")
    exporter.add_argument("-o", "--output", help="file (default: standard output)")
    exporter.add_argument("--format", choices=("jsonl", "json"), default="jsonl")
    exporter.add_argument("--space", default="default")
    exporter.add_argument("--id-property", default="_id")
    add_arguments(exporter, ("database_url", "database_pooler"))

    schema = commands.add_parser(
        "schema", help="print a JSON Schema of the blueprint format (for editors)"
    )
    schema.add_argument("-o", "--output", help="file (default: standard output)")

    init = commands.add_parser("init", help="create a new blueprint project folder")
    init.add_argument("folder", help="the folder to create (must not exist, or be empty)")

    migrate = commands.add_parser("migrate", help="create or upgrade the database tables")
    migrate.add_argument(
        "--blueprint",
        action="append",
        default=[],
        help="also create the x-datastore-indexes of this blueprint (PostgreSQL; repeatable)",
    )
    add_arguments(migrate, ("database_url", "database_pooler"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "lint":
            return _lint(args)
        if args.command == "bundle":
            return _bundle(args)
        if args.command == "diff":
            return _diff(args)
        if args.command == "check-data":
            return _check_data(args)
        if args.command == "migrate":
            return _migrate(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "keys":
            return _keys(args)
        if args.command == "token":
            return _token(args)
        if args.command == "init":
            return _init(args)
        if args.command == "import":
            return _import(args)
        if args.command == "schema":
            return _schema(args)
        if args.command == "export":
            return _export(args)
    except ConfigError as exc:
        print(f"datastore: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(args.command)


def _lint_or_report(paths: Sequence[str]) -> bool:
    """Lint blueprints before serving; print problems; True when there are no errors."""
    from datastore.blueprint.diagnostics import format_diagnostics
    from datastore.blueprint.lint import lint_paths

    diagnostics = lint_paths(paths)
    if diagnostics:
        print(format_diagnostics(diagnostics, "text"), file=sys.stderr)
    return not any(d.severity == "error" for d in diagnostics)


def _serve(args: argparse.Namespace) -> int:
    from datastore.asgi import BLUEPRINT_ENV, SPACES_ENV, parse_spaces

    if bool(args.blueprint) == bool(args.space):
        raise ConfigError("give either one BLUEPRINT or one or more --space NAME=BLUEPRINT")
    settings = load_settings(args)
    env: dict[str, str] = {}
    if args.space:
        spaces = parse_spaces(",".join(args.space))
        paths = [str(Path(p).resolve()) for p in spaces.values()]
        env[SPACES_ENV] = ",".join(f"{n}={p}" for n, p in zip(spaces, paths, strict=True))
        prefixes = {p: f"/{n}" for n, p in zip(spaces, paths, strict=True)}
    else:
        paths = [str(Path(args.blueprint).resolve())]
        env[BLUEPRINT_ENV] = paths[0]
        prefixes = {paths[0]: ""}
    for path in paths:
        if not Path(path).is_file():
            raise ConfigError(f"no blueprint at {path}")
    if not _lint_or_report(paths):
        return 1
    from datastore.app import jwt_verifier
    from datastore.preflight import jwt_warning_for_files, port_problem

    # an unreadable key file, a bad JWKS or a short secret is one clear line, exit 2
    if jwt_verifier(settings) is None:
        warning = jwt_warning_for_files(prefixes)
        if warning:
            print(f"datastore: {warning}", file=sys.stderr)
    problem = port_problem(settings.host, settings.port)
    if problem:
        raise ConfigError(problem)
    for setting_name in SERVE_SETTINGS:
        value = getattr(args, setting_name, None)
        if value is not None:
            env["DATASTORE_" + setting_name.upper()] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
    if not settings.database_url:
        from datastore.storage.engine import default_sqlite_url

        env["DATASTORE_DATABASE_URL"] = default_sqlite_url()
    os.environ.update(env)
    _prepare_database(load_settings())

    import uvicorn

    from datastore.storage.connect import shown

    print(
        f"datastore: serving on http://{settings.host}:{settings.port} "
        f"(database: {shown(os.environ['DATASTORE_DATABASE_URL'])})",
        file=sys.stderr,
    )
    uvicorn.run(
        "datastore.asgi:application",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if not args.reload else None,
        reload=args.reload,
        reload_dirs=sorted({str(Path(p).parent) for p in paths}) if args.reload else None,
        reload_includes=["*.yaml", "*.yml", "*.json"] if args.reload else None,
        log_level=settings.log_level,
        access_log=False,  # the datastore writes its own JSON access log
    )
    return 0


def _prepare_database(settings: Settings) -> None:
    """Check the database answers, and run migrations once before workers start (each worker
    would otherwise race)."""
    from datastore.storage import migrate

    db = _connect(settings)
    try:
        if not settings.migrate:
            return
        migrate.upgrade(db)
    except Exception as exc:
        raise ConfigError(f"cannot prepare the database: {str(exc).splitlines()[0]}") from exc
    finally:
        db.dispose()
    os.environ["DATASTORE_MIGRATE"] = "false"


def _connect(settings: Settings) -> Any:
    """The configured database (default: the SQLite file in the working directory), checked
    to answer; a bad URL or an unreachable server is one line (exit 2)."""
    from datastore.storage.connect import DatabaseUnavailable, open_database
    from datastore.storage.engine import default_sqlite_url

    try:
        return open_database(
            settings.database_url or default_sqlite_url(), pooler=settings.database_pooler
        )
    except DatabaseUnavailable as exc:
        raise ConfigError(str(exc)) from None


def _lint(args: argparse.Namespace) -> int:
    from datastore.blueprint.diagnostics import format_diagnostics
    from datastore.blueprint.files import declares_openapi
    from datastore.blueprint.lint import lint_paths

    blueprints = [path for path in args.blueprints if declares_openapi(path)]
    if args.strict:
        for path in args.blueprints:
            if path not in blueprints:
                print(
                    f"datastore: skipped {path}: not a blueprint (no openapi: key)", file=sys.stderr
                )
    diagnostics = lint_paths(blueprints)
    output = format_diagnostics(diagnostics, args.format)
    if output:
        print(output)
    failing = {"error", "warning"} if args.strict else {"error"}
    return 1 if any(d.severity in failing for d in diagnostics) else 0


def _bundle(args: argparse.Namespace) -> int:
    from datastore.blueprint.diagnostics import BlueprintError, format_diagnostics
    from datastore.blueprint.loader import bundle_document, dump_yaml, load_blueprint

    try:
        loaded = load_blueprint(args.blueprint)
    except BlueprintError as exc:
        print(format_diagnostics(exc.diagnostics, "text"), file=sys.stderr)
        return 1
    text = dump_yaml(bundle_document(loaded))
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _diff(args: argparse.Namespace) -> int:
    from datastore.blueprint.diagnostics import BlueprintError, format_diagnostics
    from datastore.blueprint.diff import compare, fails, format_changes
    from datastore.evolve.sources import SourceError, load_source

    expected = 1 if args.against_database else 2
    if len(args.blueprints) != expected:
        raise ConfigError(
            "give OLD and NEW, or NEW with --against-database URL"
            if expected == 2
            else "with --against-database give only NEW"
        )
    try:
        new = load_source(args.blueprints[-1])
        old = (
            _served_blueprint(args.against_database, args.space)
            if args.against_database
            else load_source(args.blueprints[0])
        )
    except SourceError as exc:
        raise ConfigError(str(exc)) from exc
    except BlueprintError as exc:
        print(format_diagnostics(exc.diagnostics, "text"), file=sys.stderr)
        return 2
    changes = compare(old, new)
    output = format_changes(changes, args.format)
    if output:
        print(output)
    return 1 if fails(changes, args.fail_on) else 0


def _check_data(args: argparse.Namespace) -> int:
    from datastore.blueprint.diagnostics import BlueprintError, format_diagnostics
    from datastore.blueprint.loader import load_blueprint
    from datastore.evolve.check import check_data, format_report
    from datastore.storage.engine import Database, default_sqlite_url

    if not Path(args.blueprint).is_file():
        raise ConfigError(f"no blueprint at {args.blueprint}")
    try:
        document = load_blueprint(args.blueprint).document
    except BlueprintError as exc:
        print(format_diagnostics(exc.diagnostics, "text"), file=sys.stderr)
        return 2
    settings = load_settings(args)
    db = Database(settings.database_url or default_sqlite_url(), pooler=settings.database_pooler)
    collection = args.collection.strip("/") if args.collection else None
    try:
        if sys.stderr.isatty():
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task("checking", total=None)

                def advance(done: int, total: int | None) -> None:
                    bar.update(task, completed=done, total=total)

                report = check_data(
                    db,
                    document,
                    space=args.space,
                    collection=collection,
                    examples=args.examples,
                    progress=advance,
                )
        else:
            report = check_data(
                db, document, space=args.space, collection=collection, examples=args.examples
            )
    except Exception as exc:
        raise ConfigError(f"cannot read the documents: {str(exc).splitlines()[0]}") from exc
    finally:
        db.dispose()
    print(format_report(report, args.format))
    return 0 if report.ok else 1


def _served_blueprint(url: str, space: str) -> Any:
    """The blueprint last served in ``space`` on the database at ``url``."""
    from datastore.evolve.sources import load_from_text
    from datastore.storage.engine import Database
    from datastore.storage.served import ServedBlueprints

    db = Database(url)
    try:
        record = ServedBlueprints(db).last(space)
    except Exception as exc:
        raise ConfigError(f"cannot read the served blueprint: {str(exc).splitlines()[0]}") from exc
    finally:
        db.dispose()
    if record is None:
        raise ConfigError(f"no blueprint was served in space {space} on that database")
    return load_from_text(record.text, f"database:{space}@{record.hash[:12]}")


def _worker(args: argparse.Namespace) -> int:
    import logging
    import signal
    import threading
    from datetime import timedelta

    from datastore.storage import migrate
    from datastore.worker import HandlerError, JobHandler, Worker, load_callable, webhook

    settings = load_settings(args)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(message)s")
    if not _lint_or_report([args.blueprint]):
        return 1
    handlers: dict[str, JobHandler] = {}
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # handler modules in the current folder, as uvicorn does
    try:
        for spec, make in [(h, load_callable) for h in args.handler] + [
            (w, webhook) for w in args.webhook
        ]:
            topic, sep, target = spec.partition("=")
            if not sep or not topic or not target:
                raise ConfigError(f"expected TOPIC=TARGET, got {spec!r}")
            if topic in handlers:
                raise ConfigError(f"the topic {topic!r} has two handlers")
            handlers[topic] = make(target)
    except HandlerError as exc:
        raise ConfigError(str(exc)) from exc
    if not handlers:
        raise ConfigError("give at least one --handler TOPIC=MODULE:FUNCTION or --webhook")
    if args.visibility_timeout <= 0 or args.poll_interval <= 0:
        raise ConfigError("--visibility-timeout and --poll-interval must be positive")
    db = _connect(settings)
    if settings.migrate:
        migrate.upgrade(db)
    worker = Worker(
        db,
        args.space,
        handlers,
        visibility=timedelta(seconds=args.visibility_timeout),
        poll_interval=args.poll_interval,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(
        f"datastore: worker {worker.name} on {', '.join(sorted(handlers))} (space {args.space})",
        file=sys.stderr,
    )
    processed = worker.run(stop)
    db.dispose()
    print(f"datastore: worker stopped after {processed} jobs", file=sys.stderr)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from datastore.auth.apikeys import ApiKeyStore
    from datastore.storage import migrate

    settings = load_settings(args)
    db = _connect(settings)
    try:
        migrate.upgrade(db)
        store = ApiKeyStore(db)
        if args.keys_command == "add":
            info, key = store.add(args.space, readonly=args.readonly)
            kind = "read-only" if info.readonly else "read-write"
            print(key)
            print(
                f"id {info.id}, {kind}, space {info.space}; it is shown only now", file=sys.stderr
            )
        elif args.keys_command == "list":
            for info in store.list(args.space):
                state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
                kind = "read-only" if info.readonly else "read-write"
                print(
                    f"{info.id}\t{info.space}\t{kind}\t{info.created_at:%Y-%m-%dT%H:%M:%SZ}\t{state}"
                )
        elif not store.revoke(args.key_id):
            print(f"datastore: no active key {args.key_id}", file=sys.stderr)
            return 1
        else:
            print(f"revoked {args.key_id}")
    finally:
        db.dispose()
    return 0


def parse_duration(text: str) -> timedelta | None:
    """``30s``/``15m``/``1h``/``7d`` → timedelta; ``never`` → None; raises ConfigError."""
    if text == "never":
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) == 0:
        raise ConfigError(f"a duration looks like 30s, 15m, 1h or 7d, got {text!r}")
    return timedelta(seconds=int(number) * units[unit])


def _token(args: argparse.Namespace) -> int:
    import json

    from datastore.auth.credentials import CredentialConfigError, mint_token

    secret = args.secret or os.environ.get("DATASTORE_JWT_SECRET")
    if not secret:
        raise ConfigError("give --secret (or set DATASTORE_JWT_SECRET)")
    try:
        claims = json.loads(args.claims)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--claims is not valid JSON: {exc}") from exc
    if not isinstance(claims, dict):
        raise ConfigError("--claims must be a JSON object")
    expires_in = parse_duration(args.expires)
    try:
        token = mint_token(claims, secret=secret, algorithm=args.algorithm, expires_in=expires_in)
    except CredentialConfigError as exc:
        raise ConfigError(str(exc)) from None
    if expires_in is None and "exp" not in claims:
        print(
            "note: this token has no exp claim; servers accept it only with --jwt-allow-no-exp",
            file=sys.stderr,
        )
    print(token)
    return 0


def _open_database(args: argparse.Namespace) -> Any:
    from datastore.storage import migrate

    settings = load_settings(args)
    db = _connect(settings)
    migrate.upgrade(db)
    return db


def _collection_schema(blueprint: str, collection: str) -> Any:
    """The write schema of the blueprint's document endpoint for this collection: the
    document PUT whose collection template routes ``collection`` (``http/routes.py``)."""
    from datastore.blueprint.loader import load_blueprint
    from datastore.blueprint.model import Kind, build_blueprint
    from datastore.blueprint.schemas import SchemaCompiler
    from datastore.http.routes import RouteTable

    document = load_blueprint(blueprint).document
    model = build_blueprint(document)
    writes = RouteTable.of(
        (op.path.rsplit("/", 1)[0], op.method, op)
        for op in model.operations.values()
        if op.kind is Kind.DOCUMENT and op.method == "put" and op.request_schema is not None
    )
    route = writes.match("/" + collection.strip("/"))
    schema = route.endpoints["put"].request_schema if route is not None else None
    if schema is None:
        raise ConfigError(f"the blueprint has no document PUT schema for {collection}")
    return SchemaCompiler(document, openapi_version=model.openapi_version).compile(schema)


def _import(args: argparse.Namespace) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from datastore.transfer import TransferError, import_documents

    path = Path(args.file)
    if not path.is_file():
        raise ConfigError(f"no file at {path}")
    schema = _collection_schema(args.blueprint, args.collection) if args.blueprint else None
    db = _open_database(args)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as bar:
            task = bar.add_task("importing", total=None)

            def advance(done: int) -> None:
                bar.update(task, description=f"importing: {done:,} records read")

            report = import_documents(
                db,
                args.space,
                args.collection.strip("/"),
                path,
                schema=schema,
                id_property=args.id_property,
                on_error=args.on_error,
                progress=advance,
            )
    except TransferError as exc:
        print(f"datastore: import stopped, nothing written: {exc}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    for problem in report.problems[:50]:
        print(f"skipped {problem}", file=sys.stderr)
    print(f"imported {report.imported:,} documents, skipped {report.skipped:,}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from datastore.transfer import export_documents

    db = _open_database(args)
    try:
        if args.output:
            with open(args.output, "wb") as out:
                count = export_documents(
                    db,
                    args.space,
                    args.collection.strip("/"),
                    out,
                    as_array=args.format == "json",
                    id_property=args.id_property,
                )
            print(f"exported {count:,} documents to {args.output}", file=sys.stderr)
        else:
            export_documents(
                db,
                args.space,
                args.collection.strip("/"),
                sys.stdout.buffer,
                as_array=args.format == "json",
                id_property=args.id_property,
            )
    finally:
        db.dispose()
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from datastore.blueprint.format_schema import blueprint_schema

    text = json.dumps(blueprint_schema(), indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _init(args: argparse.Namespace) -> int:
    import shlex
    import shutil

    target = Path(args.folder)
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} exists and is not empty")
    source = Path(__file__).resolve().parent / "scaffold"
    shutil.copytree(source, target, dirs_exist_ok=True)
    import json

    from datastore.blueprint.format_schema import blueprint_schema

    (target / "blueprint.schema.json").write_text(json.dumps(blueprint_schema(), indent=2))
    print(
        f"created {target}: api.yaml, schemas/item.json, blueprint.schema.json (for editors), "
        "README.md, requests.http"
    )
    # serve from inside the project, so its SQLite file lands there
    print(f"next: cd {shlex.quote(str(target))} && datastore serve api.yaml --dev")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from datastore.storage import migrate

    settings = load_settings(args)
    db = _connect(settings)
    try:
        before = migrate.current_revision(db)
        migrate.upgrade(db)
        after = migrate.current_revision(db)
        if args.blueprint:
            from datastore.blueprint.loader import load_blueprint
            from datastore.storage.indexes import ensure_indexes, index_specs

            for path in args.blueprint:
                created = ensure_indexes(db, index_specs(load_blueprint(path).document))
                print(f"{path}: {created} indexes in place")
    except Exception as exc:
        raise ConfigError(f"cannot migrate the database: {str(exc).splitlines()[0]}") from exc
    finally:
        db.dispose()
    print(f"database at revision {after}" + (f" (was {before})" if before != after else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
