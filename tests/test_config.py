"""Settings: flags over environment over defaults; malformed values are clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from datastore.config import SETTINGS, ConfigError, Settings, add_arguments, load_settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_defaults() -> None:
    assert load_settings(environ={}) == Settings()


def test_environment_then_flags() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    env = {
        "DATASTORE_PORT": "9000",
        "DATASTORE_MIGRATE": "false",
        "DATASTORE_MAX_LIMIT": "50",
        "DATASTORE_DEFAULT_LIMIT": "20",
    }
    assert load_settings(parser.parse_args([]), env).port == 9000
    settings = load_settings(parser.parse_args(["--port", "9100", "--migrate"]), env)
    assert (settings.port, settings.migrate, settings.max_limit) == (9100, True, 50)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATASTORE_PORT": "eighty"}, "DATASTORE_PORT"),
        ({"DATASTORE_MIGRATE": "maybe"}, "DATASTORE_MIGRATE"),
        ({"DATASTORE_PORT": "70000"}, "port"),
        ({"DATASTORE_DEFAULT_LIMIT": "5000"}, "default_limit"),
        ({"DATASTORE_MAX_SORT_KEYS": "0"}, "max_sort_keys"),
        ({"DATASTORE_MAX_QUERY_NODES": "0"}, "max_query_nodes"),
        ({"DATASTORE_MAX_JSON_DEPTH": "129"}, "max_json_depth may be at most 128"),
        ({"DATASTORE_JWT_ALLOW_NO_EXP": "sometimes"}, "DATASTORE_JWT_ALLOW_NO_EXP"),
    ],
)
def test_malformed_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.env}`" in text, setting.name
        assert setting.flag in text, setting.name


def test_repeatable_cors_origin() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--cors-origin", "https://a.example", "--cors-origin", "https://b.example"]
    )
    assert load_settings(args, {}).cors_origin == "https://a.example,https://b.example"


def test_tokens_without_exp_are_refused_unless_allowed() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert load_settings(parser.parse_args([]), {}).jwt_allow_no_exp is False
    env = {"DATASTORE_JWT_ALLOW_NO_EXP": "true"}
    assert load_settings(parser.parse_args([]), env).jwt_allow_no_exp is True
    assert (
        load_settings(parser.parse_args(["--no-jwt-allow-no-exp"]), env).jwt_allow_no_exp is False
    )
    assert load_settings(parser.parse_args(["--jwt-allow-no-exp"]), {}).jwt_allow_no_exp is True


def test_database_pooler_is_transaction_or_nothing() -> None:
    from datastore.config import ConfigError, load_settings

    pooled = load_settings(environ={"DATASTORE_DATABASE_POOLER": "transaction"})
    assert pooled.database_pooler == "transaction"
    with pytest.raises(ConfigError, match="database_pooler"):
        load_settings(environ={"DATASTORE_DATABASE_POOLER": "session"})
