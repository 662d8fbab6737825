"""The ASGI entry point for servers: ``datastore.asgi:application`` (an app factory).

uvicorn (``datastore serve``) and gunicorn with uvicorn workers (``deploy/gunicorn.conf.py``)
both build the app in each worker from the environment: ``DATASTORE_BLUEPRINT`` (one blueprint
served at ``/``) or ``DATASTORE_SPACES`` (``dev=a.yaml,prod=b.yaml``, each at ``/<space>``), plus
every ``DATASTORE_*`` setting.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Mapping
from typing import Any

from datastore.app import ServedBlueprint, create_app, serve_blueprint_file
from datastore.config import ConfigError, load_settings

BLUEPRINT_ENV = "DATASTORE_BLUEPRINT"
SPACES_ENV = "DATASTORE_SPACES"


def parse_spaces(text: str) -> dict[str, str]:
    """``"dev=a.yaml,prod=b.yaml"`` → ``{"dev": "a.yaml", ...}``; raises ConfigError."""
    spaces: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"a space must be given as NAME=BLUEPRINT, got {item!r}")
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"a space name may hold letters, digits, '-' and '_': {name!r}")
        if name in spaces:
            raise ConfigError(f"the space {name!r} is given twice")
        spaces[name] = path
    return spaces


def blueprints_from_environment(environ: Mapping[str, str]) -> list[ServedBlueprint]:
    """The blueprints the environment names; raises ConfigError when it names none."""
    spaces = environ.get(SPACES_ENV)
    if spaces:
        return [serve_blueprint_file(p, name) for name, p in parse_spaces(spaces).items()]
    path = environ.get(BLUEPRINT_ENV)
    if not path:
        raise ConfigError(f"set {BLUEPRINT_ENV} (or {SPACES_ENV}) to the blueprint to serve")
    return [serve_blueprint_file(path)]


def application() -> Any:
    """Build the app from the environment (called once per worker process)."""
    environ = os.environ
    settings = load_settings(environ=environ)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    logging.getLogger("datastore").setLevel(settings.log_level.upper())
    blueprints = blueprints_from_environment(environ)
    app = create_app(
        settings,
        blueprints,
        mount_at_root=not bool(environ.get(SPACES_ENV)),
    )
    freeze_startup_objects()
    return app


def freeze_startup_objects() -> None:
    """Move what start-up built (the blueprint, its compiled schemas and statements, the
    libraries' modules: ~125,000 objects) out of the garbage collector's sight. They live as
    long as the worker, and each full collection walked them all: a 50-100 ms pause of the
    worker, and of every request it held, every few thousand requests."""
    gc.collect()
    gc.freeze()
