"""Blocking work (database calls) off the event loop, on one shared thread pool.

Starlette's ``run_in_threadpool`` goes through anyio's worker threads, whose hand-off is a
Python-level ``queue.Queue`` (a lock and a condition per call); profiled under load, that
hand-off alone was about 8 % of a GET's CPU. ``loop.run_in_executor`` with a
``ThreadPoolExecutor`` hands work over through the C ``SimpleQueue``. The caller's context
variables travel with the call, as they do with ``run_in_threadpool``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

MAX_THREADS = 40
"""As many as anyio's default limit, which this replaces."""

_executor = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="datastore")


async def run_in_threadpool(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` on the pool; its result (or exception) when it is done."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args, **kwargs)
    return await loop.run_in_executor(_executor, call)
