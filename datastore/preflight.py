"""What ``datastore serve`` checks before it starts: that it can listen where it was told to,
and which operations the JWT configuration makes impossible to pass.

Each problem is one line for the user; nothing here starts a server.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from datastore.auth.acl import AclSyntaxError, needs_claims, parse_rule
from datastore.blueprint.model import Operation


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port`` (None when it can), found by binding
    the way uvicorn does (``SO_REUSEADDR``) and letting go at once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host!r}: {exc.strerror} (--host)"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return _bind_problem(host, port, exc)
    return None


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is in use (another server is listening there); "
            f"choose another with --port, e.g. --port {port + 1 if port < 65535 else 8080}"
        )
    if exc.errno == errno.EACCES:
        return (
            f"not allowed to listen on port {port} (ports below 1024 need privileges); "
            "choose another with --port, e.g. --port 8080"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}: it is not an address of this machine (--host)"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def unpassable_without_jwt(operations: Iterable[tuple[str, Operation]]) -> list[str]:
    """``"GET /path"`` of each operation whose rule passes only with JWT claims (given as
    (path prefix, operation) pairs: a space's mount point, or "")."""
    found = []
    for prefix, op in operations:
        if op.acl is None:
            continue
        try:
            rule = parse_rule(op.acl)
        except AclSyntaxError:
            continue  # the linter reports it
        if needs_claims(rule):
            found.append(f"{op.method.upper()} {prefix}{op.path}")
    return found


def jwt_warning(operations: Iterable[tuple[str, Operation]]) -> str | None:
    """The start-up warning when no JWT key is configured but rules read ``jwt.``."""
    names = unpassable_without_jwt(operations)
    if not names:
        return None
    return (
        "warning: no JWT key is configured (--jwt-secret, --jwt-public-key or --jwks; "
        "--dev for a development secret), so bearer tokens are refused and these rules, "
        f"which read jwt., can never pass: {', '.join(names)}"
    )


def jwt_warning_for_files(prefixes: dict[str, str]) -> str | None:
    """``jwt_warning`` for blueprint files (path → the prefix its space is served under)."""
    from datastore.blueprint.loader import load_blueprint
    from datastore.blueprint.model import build_blueprint

    operations = [
        (prefix, op)
        for path, prefix in prefixes.items()
        for op in build_blueprint(load_blueprint(path).document).operations.values()
    ]
    return jwt_warning(operations)
