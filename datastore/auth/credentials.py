"""Credentials: JWTs (PyJWT) and API keys, verified into a ``Principal``.

JWT verification accepts only the algorithm family of the configured key: HS256/384/512 with a
shared secret; RS/PS/ES/EdDSA with a PEM public key or a JWKS (a file, or a URL fetched through
PyJWT's ``PyJWKClient``, cached and refetched when a token names an unknown ``kid``). ``alg:
none`` and algorithm confusion (an HS token checked against a public key) are refused because
the accepted list never mixes families. ``exp`` is required (a token without it would be good
forever) unless ``JwtSettings.require_exp`` is off; ``exp`` and ``nbf`` are enforced with a
small leeway; ``aud`` and ``iss`` when configured.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from jwt import PyJWKClient

from datastore.errors import Unauthorized

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
HMAC_MIN_SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
"""The shortest secret each HMAC algorithm is used with: its hash's size (RFC 7518 §3.2)."""
PUBLIC_KEY_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: verified JWT claims and/or an API key."""

    claims: Mapping[str, Any] | None = None
    apikey_id: str | None = None
    apikey_readonly: bool | None = None

    @property
    def authenticated(self) -> bool:
        """Whether any credential was verified."""
        return self.claims is not None or self.apikey_id is not None


ANONYMOUS = Principal()


class CredentialConfigError(ValueError):
    """A key, key file or JWKS that cannot be used."""


def check_secret(secret: str, algorithm: str = "HS256") -> None:
    """Raises CredentialConfigError (one line) when the secret is too short for ``algorithm``."""
    size, needed = len(secret.encode()), HMAC_MIN_SECRET_BYTES[algorithm]
    if size < needed:
        raise CredentialConfigError(
            f"the JWT secret is {size} bytes; {algorithm} needs at least {needed} "
            "(make one with: openssl rand -hex 32)"
        )


@dataclass(frozen=True)
class JwtSettings:
    """How tokens are verified (at most one of secret, public key, JWKS)."""

    secret: str | None = None
    public_key_pem: str | None = None
    jwks: str | None = None
    audience: str | None = None
    issuer: str | None = None
    leeway_seconds: int = 30
    require_exp: bool = True

    @property
    def configured(self) -> bool:
        """Whether any verification key is set."""
        return bool(self.secret or self.public_key_pem or self.jwks)


@dataclass
class _LocalJwks:
    path: Path
    keys: dict[str, Any] = field(default_factory=dict)

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            keyset = jwt.PyJWKSet.from_dict(data)
        except (OSError, ValueError, jwt.PyJWKError) as exc:
            raise CredentialConfigError(f"cannot read the JWKS {self.path}: {exc}") from exc
        self.keys = {k.key_id or "": k for k in keyset.keys}

    def key_for(self, kid: str | None) -> Any:
        if kid not in self.keys:
            self.load()  # rotated keys: reload once on an unknown kid
        if kid in self.keys:
            return self.keys[kid]
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        raise Unauthorized("The token's key is not known.")


VERIFIED_SECONDS = 30.0
"""How long a verified token is remembered (never past its expiry)."""
VERIFIED_MAX = 10_000
"""Remembered tokens per process; the memory is emptied when full."""


class JwtVerifier:
    """Verifies bearer tokens against the configured key."""

    def __init__(self, settings: JwtSettings) -> None:
        given = [x for x in (settings.secret, settings.public_key_pem, settings.jwks) if x]
        if len(given) > 1:
            raise CredentialConfigError("configure one of: a JWT secret, a public key, a JWKS")
        self.settings = settings
        self._verified: dict[str, tuple[dict[str, Any], float]] = {}
        self._remote: PyJWKClient | None = None
        self._local: _LocalJwks | None = None
        if settings.secret:
            check_secret(settings.secret)
            size = len(settings.secret.encode())
            # only the algorithms the secret is long enough for (PyJWT would warn on the others)
            self.algorithms: tuple[str, ...] = tuple(
                a for a in HMAC_ALGORITHMS if size >= HMAC_MIN_SECRET_BYTES[a]
            )
        else:
            self.algorithms = PUBLIC_KEY_ALGORITHMS
        if settings.public_key_pem:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            try:
                load_pem_public_key(settings.public_key_pem.encode())
            except ValueError as exc:
                raise CredentialConfigError(f"the JWT public key is not a PEM key: {exc}") from exc
        if settings.jwks:
            if settings.jwks.startswith(("http://", "https://")):
                self._remote = PyJWKClient(settings.jwks, cache_keys=True, lifespan=300)
            else:
                self._local = _LocalJwks(Path(settings.jwks))
                self._local.load()

    def _key(self, token: str) -> Any:
        if self.settings.secret:
            return self.settings.secret
        if self.settings.public_key_pem:
            return self.settings.public_key_pem
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if self._local is not None:
            return self._local.key_for(kid)
        assert self._remote is not None
        try:
            return self._remote.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("The token's key is not known.") from exc

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; raises Unauthorized saying why in general terms.

        A verified token is remembered for up to ``VERIFIED_SECONDS`` and never past its
        ``exp`` (plus leeway): clients send the same token on every request, and checking its
        signature again was about a tenth of the CPU of a GET with a JWT rule. (A key removed
        from a JWKS is thus trusted for at most that much longer.)"""
        now = time.time()
        remembered = self._verified.get(token)
        if remembered is not None:
            claims, until = remembered
            if now < until:
                return dict(claims)
            self._verified.pop(token, None)
        claims = self._verify(token)
        until = now + VERIFIED_SECONDS
        expires = claims.get("exp")
        if isinstance(expires, int | float) and not isinstance(expires, bool):
            until = min(until, expires + self.settings.leeway_seconds)
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (claims, until)
        return dict(claims)

    def _verify(self, token: str) -> dict[str, Any]:
        if not self.settings.configured:
            raise Unauthorized("This server accepts no bearer tokens.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:  # not JSON, a kid that is no string, a crit...
            raise Unauthorized("The token is malformed.") from exc
        if header.get("alg") not in self.algorithms:
            raise Unauthorized("The token's algorithm is not accepted.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key(token),
                algorithms=list(self.algorithms),
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={
                    "require": ["exp"] if self.settings.require_exp else [],
                    "verify_aud": self.settings.audience is not None,
                    "verify_iss": self.settings.issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The token has expired.") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(_missing(exc.claim)) from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized("The token is not valid yet.") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized("The token is meant for another audience.") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthorized("The token comes from an unexpected issuer.") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("The token signature is invalid.") from exc
        except (jwt.InvalidKeyError, jwt.InvalidAlgorithmError) as exc:
            raise Unauthorized("The token's algorithm is not accepted.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("The token is malformed.") from exc
        return claims


def _missing(claim: str) -> str:
    if claim == "exp":
        return "The token has no expiry (exp)."
    return f"The token has no {claim} claim."


DEFAULT_LIFETIME = timedelta(hours=1)


def mint_token(
    claims: Mapping[str, Any],
    *,
    secret: str,
    algorithm: str = "HS256",
    expires_in: timedelta | None = DEFAULT_LIFETIME,
) -> str:
    """A signed JWT for local use (``datastore token``, ``serve --dev``'s ``/__jwt``), expiring
    after ``expires_in``; ``None`` leaves ``exp`` out (servers accept such a token only with
    ``--jwt-allow-no-exp``)."""
    if algorithm not in HMAC_ALGORITHMS:
        raise CredentialConfigError(f"tokens are minted with HS256/384/512, not {algorithm}")
    check_secret(secret, algorithm)
    payload = dict(claims)
    now = datetime.now(UTC)
    payload.setdefault("iat", int(now.timestamp()))
    if expires_in is not None:
        payload["exp"] = int((now + expires_in).timestamp())
    return jwt.encode(payload, secret, algorithm=algorithm)
