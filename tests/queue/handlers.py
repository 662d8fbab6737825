"""Job handlers the queue tests load by name (``tests.queue.handlers:...``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def record(payload: dict[str, Any]) -> None:
    """Append the payload's ``n`` to the file named in the payload."""
    with Path(payload["file"]).open("a") as out:
        out.write(f"{payload['n']}\n")


def slow_record(payload: dict[str, Any]) -> None:
    """Note the start, sleep ``seconds``, then record (killed mid-job in a test)."""
    with Path(payload["file"] + ".started").open("a") as out:
        out.write(f"{os.getpid()}\n")
    time.sleep(float(payload.get("seconds", 0)))
    record(payload)


def always_fails(payload: Any) -> None:
    """Fail every time."""
    raise ValueError("this handler always fails")
