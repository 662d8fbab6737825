"""The time every stored timestamp is taken from, and how timestamps are written out."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def format_datetime(value: datetime) -> str:
    """RFC 3339 text of a UTC datetime, microseconds included: ``2024-05-01T12:00:00.000001Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
