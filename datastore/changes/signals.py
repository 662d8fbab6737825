"""Ending change streams when the server is told to stop.

uvicorn (and gunicorn's uvicorn worker) waits for open responses before it shuts down; an
event stream never finishes by itself, so it would hold the worker until the graceful timeout
killed it. The server's SIGTERM / SIGINT handlers are chained: the streams end first (their
clients reconnect with their last id), then the server's own handler runs.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from datastore.changes.service import ChangeService

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def end_streams_on_signals(changes: ChangeService) -> Callable[[], None]:
    """Chain a handler that ends ``changes``' streams before the current one, on the main
    thread only (elsewhere signals cannot be handled); returns what restores the old ones."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        changes.shut_down_soon()
        before: Any = previous.get(signal.Signals(signum))
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for sig in SIGNALS:
        signal.signal(sig, handler)

    def restore() -> None:
        if threading.current_thread() is threading.main_thread():
            for sig, before in previous.items():
                if signal.getsignal(sig) is handler and before is not None:
                    signal.signal(sig, before)

    return restore
