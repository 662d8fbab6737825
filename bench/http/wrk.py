"""wrk: finding (or installing) it, describing a load, running it and reading its numbers.

A load is one request shape, optionally with its path drawn from a list per request (wrk's Lua
``request`` hook), so a GET scenario spreads over many documents instead of hammering one row.
The Lua ``done`` hook prints the summary as one JSON line, which is what we parse; wrk's
human-readable text is ignored.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def find_or_install() -> str:
    """The wrk executable: on PATH, else installed from Debian's packages (needs root)."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise SystemExit("wrk is not installed and apt-get is not available: install wrk")
    for command in ([apt, "install", "-y", "wrk"], [apt, "update"], [apt, "install", "-y", "wrk"]):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if command[-1] == "wrk" and done.returncode == 0:
            break
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("could not install wrk with apt-get; install it and run again")
    return found


@dataclass(frozen=True)
class Load:
    """What every request of one scenario looks like."""

    method: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None

    def lua(self) -> str:
        """The wrk script: a random path of ``paths`` per request, and a JSON summary."""
        paths = ",".join(_lua_string(p) for p in self.paths)
        headers = ",".join(f"[{_lua_string(k)}]={_lua_string(v)}" for k, v in self.headers.items())
        body = _lua_string(self.body.decode()) if self.body is not None else "nil"
        return f"""
local paths = {{{paths}}}
local headers = {{{headers}}}
local body = {body}
local count = #paths
math.randomseed(os.time())
request = function()
  return wrk.format({_lua_string(self.method)}, paths[math.random(count)], headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, e.status))
end
"""


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII


@dataclass(frozen=True)
class Result:
    """The numbers of one wrk run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Requests that failed or answered outside 2xx/3xx (wrk's ``status`` errors included)."""
    error_kinds: dict[str, int] = field(default_factory=dict)
    """The errors by wrk's kind: connect, read, write, timeout, status (non-2xx/3xx)."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run(
    wrk: str,
    base_url: str,
    load: Load,
    *,
    seconds: int,
    connections: int,
    threads: int = 2,
) -> Result:
    """One wrk run of ``load`` against ``base_url``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(load.lua())
    try:
        done = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 60,
        )
    finally:
        Path(script.name).unlink()
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"requests"')]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    data = json.loads(lines[-1])
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=sum(data[k] for k in KINDS),
        error_kinds={k: data[k] for k in KINDS if data[k]},
    )


KINDS = ("connect", "read", "write", "timeout", "status")
