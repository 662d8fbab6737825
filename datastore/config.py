"""Configuration: one table of settings; flags > ``DATASTORE_*`` environment > defaults.

Every setting has a command-line flag (``--max-body-bytes``) and an environment variable
(``DATASTORE_MAX_BODY_BYTES``). ``Settings`` is frozen and built once; nothing reads
``os.environ`` after start-up.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

MAX_JSON_DEPTH = 128
"""The deepest ``max_json_depth``: orjson writes at most 254 levels, and the SQL of a query
holds a value under its field path (up to 64 levels more)."""
POOLERS = ("", "transaction")
"""The values of ``database_pooler``: none, or a transaction-mode pooler (PgBouncer)."""
DEV_SECRET = "datastore-development-secret-not-for-production"
"""The JWT secret of ``serve --dev`` when none is configured (development only)."""


@dataclass(frozen=True)
class Setting:
    """One configurable value."""

    name: str
    type: type
    default: Any
    help: str

    @property
    def env(self) -> str:
        """Its environment variable."""
        return "DATASTORE_" + self.name.upper()

    @property
    def flag(self) -> str:
        """Its command-line flag."""
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        str,
        "",
        "SQLAlchemy URL of the database; default: a SQLite file "
        "datastore.sqlite3 in the working directory",
    ),
    Setting(
        "database_pooler",
        str,
        "",
        "'transaction' when PostgreSQL is reached through a transaction-mode pooler "
        "(PgBouncer): no prepared statements, session settings set per transaction",
    ),
    Setting(
        "read_database",
        str,
        "",
        "SQLAlchemy URL of a streaming read replica of the PostgreSQL database: GET reads go "
        "there, with read-your-writes (X-Datastore-Consistency)",
    ),
    Setting("host", str, "127.0.0.1", "address to listen on"),
    Setting("port", int, 8080, "port to listen on"),
    Setting("workers", int, 1, "server worker processes"),
    Setting("migrate", bool, True, "run pending database migrations at start-up"),
    Setting("max_body_bytes", int, 1024 * 1024, "largest request body accepted (413 beyond)"),
    Setting(
        "max_json_depth",
        int,
        64,
        "deepest nesting of JSON arrays/objects accepted in bodies and in q/h (at most 128)",
    ),
    Setting("default_limit", int, 100, "documents per list response when no limit is given"),
    Setting("max_limit", int, 1000, "largest limit / page size a client may ask for"),
    Setting("max_sort_keys", int, 16, "most sort keys one listing may name (400 beyond)"),
    Setting(
        "max_query_nodes",
        int,
        100,
        "most conditions and operators in one query: q, URL conditions or filters (400 beyond)",
    ),
    Setting("statement_timeout_ms", int, 5000, "PostgreSQL statement timeout (0 = none)"),
    Setting(
        "pool_size",
        int,
        10,
        "database connections per worker (transactions: up to twice this under load; "
        "PostgreSQL single-document reads: as many again)",
    ),
    Setting("queue_max_attempts", int, 5, "attempts of a queued job before it is dead-lettered"),
    Setting("jwt_secret", str, "", "shared secret of HS256/384/512 bearer tokens"),
    Setting("jwt_public_key", str, "", "PEM file of the public key of RS/PS/ES/EdDSA tokens"),
    Setting("jwks", str, "", "JWKS file or URL with the keys of bearer tokens"),
    Setting("jwt_audience", str, "", "required aud claim of bearer tokens"),
    Setting("jwt_issuer", str, "", "required iss claim of bearer tokens"),
    Setting("jwt_leeway", int, 30, "seconds of clock skew allowed for exp/nbf"),
    Setting(
        "jwt_allow_no_exp",
        bool,
        False,
        "accept bearer tokens without an exp claim (they never expire); refused by default",
    ),
    Setting(
        "dev",
        bool,
        False,
        "development mode: POST /__jwt signs posted claims with the JWT secret "
        f"(default {DEV_SECRET!r})",
    ),
    Setting(
        "admin",
        bool,
        False,
        "serve the data browser at /__admin (always served with --dev)",
    ),
    Setting(
        "changes_retention_seconds",
        int,
        7 * 24 * 3600,
        "how long the change log keeps a change (older cursors get 410); 0 = no age limit",
    ),
    Setting(
        "changes_retention_count",
        int,
        100_000,
        "most changes the log keeps per space (older cursors get 410); 0 = no count limit",
    ),
    Setting(
        "changes_poll_ms",
        int,
        200,
        "how often a worker reads the change log for new changes on SQLite (PostgreSQL is "
        "woken by NOTIFY and reads it every 5 s besides)",
    ),
    Setting(
        "changes_keepalive_seconds",
        int,
        15,
        "seconds between keep-alive comments on an idle change stream",
    ),
    Setting(
        "changes_max_wait",
        int,
        30,
        "longest wait (seconds) a long-polling GET .../_changes may ask for",
    ),
    Setting("log_level", str, "info", "log level: debug, info, warning, error"),
    Setting(
        "cors_origin",
        str,
        "",
        "origins browsers may call from, comma-separated ('*' only for all-public blueprints)",
    ),
)


ALIASES: dict[str, tuple[str, ...]] = {"database_url": ("--database",)}
"""Extra spellings of some flags."""
REPEATABLE = frozenset({"cors_origin"})
"""Flags that may be given several times; their values are joined with commas."""


class _JoinedAppend(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest, None)
        setattr(namespace, self.dest, f"{current},{values}" if current else str(values))


@dataclass(frozen=True)
class Settings:
    """The effective configuration."""

    database_url: str = ""
    database_pooler: str = ""
    read_database: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    migrate: bool = True
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 64
    default_limit: int = 100
    max_limit: int = 1000
    max_sort_keys: int = 16
    max_query_nodes: int = 100
    statement_timeout_ms: int = 5000
    pool_size: int = 10
    queue_max_attempts: int = 5
    jwt_secret: str = ""
    jwt_public_key: str = ""
    jwks: str = ""
    jwt_audience: str = ""
    jwt_issuer: str = ""
    jwt_leeway: int = 30
    jwt_allow_no_exp: bool = False
    dev: bool = False
    admin: bool = False
    changes_retention_seconds: int = 7 * 24 * 3600
    changes_retention_count: int = 100_000
    changes_poll_ms: int = 200
    changes_keepalive_seconds: int = 15
    changes_max_wait: int = 30
    log_level: str = "info"
    cors_origin: str = ""

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with some values changed."""
        return replace(self, **values)


class ConfigError(ValueError):
    """A setting has a value of the wrong form."""


def _convert(setting: Setting, raw: str) -> Any:
    if setting.type is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{setting.env}: expected true or false, got {raw!r}")
    if setting.type is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{setting.env}: expected a whole number, got {raw!r}") from None
    return raw


def add_arguments(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """Add a flag for each setting (or for the named ones) to an argparse parser."""
    for setting in SETTINGS:
        if names is not None and setting.name not in names:
            continue
        help_text = f"{setting.help} [env {setting.env}; default {setting.default!r}]"
        if setting.type is bool:
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif setting.name in REPEATABLE:
            parser.add_argument(
                setting.flag,
                dest=setting.name,
                action=_JoinedAppend,
                default=None,
                help=help_text + " (repeatable)",
            )
        else:
            flags = [setting.flag, *ALIASES.get(setting.name, ())]
            parser.add_argument(
                *flags, dest=setting.name, type=setting.type, default=None, help=help_text
            )


def load_settings(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Settings from flags (where given), then the environment, then the defaults.

    Raises ConfigError when an environment value has the wrong form.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    known = {f.name for f in fields(Settings)}
    for setting in SETTINGS:
        flag_value = getattr(args, setting.name, None) if args is not None else None
        if flag_value is not None:
            values[setting.name] = flag_value
        elif setting.env in env:
            values[setting.name] = _convert(setting, env[setting.env])
    settings = Settings(**{k: v for k, v in values.items() if k in known})
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if not 0 < settings.port < 65536:
        raise ConfigError(f"port must be between 1 and 65535, got {settings.port}")
    for name in (
        "max_body_bytes",
        "max_json_depth",
        "default_limit",
        "max_limit",
        "max_sort_keys",
        "max_query_nodes",
        "pool_size",
        "queue_max_attempts",
        "changes_poll_ms",
        "changes_keepalive_seconds",
    ):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    if settings.database_pooler not in POOLERS:
        raise ConfigError("database_pooler must be 'transaction' or empty (no pooler)")
    if settings.read_database and not settings.database_url.startswith("postgres"):
        raise ConfigError("read_database needs a PostgreSQL database_url (its primary)")
    if settings.max_json_depth > MAX_JSON_DEPTH:
        raise ConfigError(f"max_json_depth may be at most {MAX_JSON_DEPTH}")
    for name in ("changes_retention_seconds", "changes_retention_count", "changes_max_wait"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name} may not be negative")
    if settings.jwt_leeway < 0:
        raise ConfigError("jwt_leeway may not be negative")
    keys = [k for k in (settings.jwt_secret, settings.jwt_public_key, settings.jwks) if k]
    if len(keys) > 1:
        raise ConfigError("configure only one of jwt_secret, jwt_public_key and jwks")
    if settings.default_limit > settings.max_limit:
        raise ConfigError("default_limit may not exceed max_limit")
