"""JWT verification and its attacks; API keys on both backends."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from datastore.auth.apikeys import ApiKeyStore
from datastore.auth.credentials import (
    CredentialConfigError,
    JwtSettings,
    JwtVerifier,
    mint_token,
)
from datastore.errors import Unauthorized
from datastore.storage.engine import Database

SECRET = "s3cret-for-tests-only-32-bytes-long!"


def later() -> int:
    """An ``exp`` an hour from now (tokens without one are refused by default)."""
    return int(time.time()) + 3600


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def rsa_keys() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, public


def refused(verifier: JwtVerifier, token: str, reason: str) -> None:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    assert reason in (caught.value.detail or ""), caught.value.detail


def test_hs256_round_trip_and_expiry() -> None:
    verifier = JwtVerifier(JwtSettings(secret=SECRET, leeway_seconds=0))
    token = mint_token({"sub": "u1"}, secret=SECRET)
    assert verifier.verify(token)["sub"] == "u1"
    expired = jwt.encode({"sub": "u1", "exp": int(time.time()) - 60}, SECRET, algorithm="HS256")
    refused(verifier, expired, "expired")
    future = jwt.encode({"nbf": int(time.time()) + 600, "exp": later()}, SECRET, "HS256")
    refused(verifier, future, "not valid yet")


def test_a_remembered_token_still_expires_on_time() -> None:
    verifier = JwtVerifier(JwtSettings(secret=SECRET, leeway_seconds=0))
    token = jwt.encode({"sub": "u1", "exp": time.time() + 1.0}, SECRET, algorithm="HS256")
    first = verifier.verify(token)
    first["sub"] = "changed by a caller"
    assert verifier.verify(token)["sub"] == "u1"  # remembered, and not shared with callers
    time.sleep(1.2)
    refused(verifier, token, "expired")


def test_remembering_does_not_outlive_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = JwtVerifier(JwtSettings(secret=SECRET))
    token = mint_token({"sub": "u1"}, secret=SECRET)
    assert verifier.verify(token)["sub"] == "u1"
    calls: list[str] = []
    real = verifier._verify
    monkeypatch.setattr(verifier, "_verify", lambda t: calls.append(t) or real(t))
    verifier.verify(token)
    assert calls == []  # served from memory
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 31)
    verifier.verify(token)
    assert calls == [token]  # checked again after the window


def test_a_token_without_exp_is_refused_unless_allowed() -> None:
    forever = jwt.encode({"sub": "u1"}, SECRET, algorithm="HS256")
    refused(JwtVerifier(JwtSettings(secret=SECRET)), forever, "The token has no expiry (exp).")
    allowing = JwtVerifier(JwtSettings(secret=SECRET, require_exp=False))
    assert allowing.verify(forever)["sub"] == "u1"
    refused(allowing, jwt.encode({"exp": int(time.time()) - 60}, SECRET, "HS256"), "expired")
    for exp in ("soon", [1], {"t": 1}):  # present but no number: malformed either way
        token = jwt.encode({"sub": "u1", "exp": exp}, SECRET, algorithm="HS256")
        refused(JwtVerifier(JwtSettings(secret=SECRET)), token, "malformed")
        refused(allowing, token, "malformed")
    null = jwt.encode({"sub": "u1", "exp": None}, SECRET, algorithm="HS256")
    refused(JwtVerifier(JwtSettings(secret=SECRET)), null, "The token has no expiry (exp).")


def test_missing_audience_or_issuer_is_named() -> None:
    verifier = JwtVerifier(JwtSettings(secret=SECRET, audience="api", issuer="me"))
    no_aud = jwt.encode({"iss": "me", "exp": later()}, SECRET, algorithm="HS256")
    refused(verifier, no_aud, "The token has no aud claim.")
    no_iss = jwt.encode({"aud": "api", "exp": later()}, SECRET, algorithm="HS256")
    refused(verifier, no_iss, "The token has no iss claim.")


def test_minted_tokens_expire_unless_told_not_to() -> None:
    claims = jwt.decode(mint_token({"sub": "u1"}, secret=SECRET), SECRET, algorithms=["HS256"])
    assert 3590 < claims["exp"] - time.time() <= 3600
    forever = mint_token({"sub": "u1"}, secret=SECRET, expires_in=None)
    assert "exp" not in jwt.decode(forever, SECRET, algorithms=["HS256"])


def test_leeway_tolerates_small_skew() -> None:
    verifier = JwtVerifier(JwtSettings(secret=SECRET, leeway_seconds=30))
    token = jwt.encode({"exp": int(time.time()) - 5}, SECRET, algorithm="HS256")
    assert verifier.verify(token) is not None


def test_attacks_are_refused() -> None:
    verifier = JwtVerifier(JwtSettings(secret=SECRET))
    none_token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'admin'})}."
    refused(verifier, none_token, "algorithm")
    other = jwt.encode({"sub": "u1"}, "another-secret-of-enough-length!!", algorithm="HS256")
    refused(verifier, other, "signature")
    refused(verifier, "not-a-token", "malformed")
    refused(verifier, "a.b.c", "malformed")
    token = mint_token({"sub": "u1"}, secret=SECRET)
    tampered = token.rsplit(".", 1)[0] + "." + "A" * 43
    refused(verifier, tampered, "signature")


def test_algorithm_confusion_is_refused() -> None:
    key, public = rsa_keys()
    verifier = JwtVerifier(JwtSettings(public_key_pem=public))
    good = jwt.encode({"sub": "u1", "exp": later()}, key, algorithm="RS256")
    assert verifier.verify(good)["sub"] == "u1"
    # An attacker signs with HS256 using the public key as the HMAC secret.
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64({"sub": "admin"})
    import hashlib
    import hmac

    signature = hmac.new(public.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()
    refused(verifier, forged, "algorithm")
    other_key, _ = rsa_keys()
    other = jwt.encode({"sub": "u1", "exp": later()}, other_key, algorithm="RS256")
    refused(verifier, other, "signature")


def test_audience_and_issuer() -> None:
    verifier = JwtVerifier(JwtSettings(secret=SECRET, audience="api", issuer="me"))
    ok = jwt.encode({"aud": "api", "iss": "me", "exp": later()}, SECRET, algorithm="HS256")
    assert verifier.verify(ok)
    other_aud = jwt.encode({"aud": "x", "iss": "me", "exp": later()}, SECRET, algorithm="HS256")
    refused(verifier, other_aud, "audience")
    other_iss = jwt.encode({"aud": "api", "iss": "x", "exp": later()}, SECRET, algorithm="HS256")
    refused(verifier, other_iss, "issuer")


def test_jwks_file_with_rotation(tmp_path: Path) -> None:
    first = ec.generate_private_key(ec.SECP256R1())
    second = ec.generate_private_key(ec.SECP256R1())

    def jwk(key: Any, kid: str) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        return {**data, "kid": kid, "alg": "ES256", "use": "sig"}

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(first, "k1")]}))
    verifier = JwtVerifier(JwtSettings(jwks=str(path)))
    token = jwt.encode({"sub": "u", "exp": later()}, first, "ES256", headers={"kid": "k1"})
    assert verifier.verify(token)["sub"] == "u"
    rotated = jwt.encode({"sub": "v", "exp": later()}, second, "ES256", headers={"kid": "k2"})
    refused(verifier, rotated, "key is not known")
    path.write_text(json.dumps({"keys": [jwk(first, "k1"), jwk(second, "k2")]}))
    assert verifier.verify(rotated)["sub"] == "v"


def test_bad_configuration() -> None:
    with pytest.raises(CredentialConfigError):
        JwtVerifier(JwtSettings(secret="x", jwks="y"))
    with pytest.raises(CredentialConfigError):
        JwtVerifier(JwtSettings(public_key_pem="not a key"))
    with pytest.raises(CredentialConfigError):
        mint_token({}, secret="x", algorithm="RS256")


def test_api_keys(database: Database, space: str) -> None:
    store = ApiKeyStore(database)
    info, key = store.add(space, readonly=True)
    assert key.startswith("dsk_")
    assert store.authenticate(space, key) == info
    assert store.authenticate(space + "x", key) is None
    assert store.authenticate(space, key + "x") is None
    assert store.authenticate(space, "garbage") is None
    assert [k.id for k in store.list(space)] == [info.id]
    assert store.revoke(info.id)
    assert not store.revoke(info.id)
    assert store.authenticate(space, key) is None
    assert store.list(space)[0].revoked_at is not None


def test_jwks_url_is_fetched_cached_and_refetched_on_unknown_kid() -> None:
    import http.server
    import threading

    first = ec.generate_private_key(ec.SECP256R1())
    second = ec.generate_private_key(ec.SECP256R1())

    def jwk(key: Any, kid: str) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        return {**data, "kid": kid, "alg": "ES256", "use": "sig"}

    served = {"keys": [jwk(first, "k1")]}
    hits: list[str] = []

    class Keys(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = json.dumps(served).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.HTTPServer(("127.0.0.1", 0), Keys)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
        verifier = JwtVerifier(JwtSettings(jwks=url))
        # PyJWT refetches for an unknown kid at most once per cooldown (30 s): shorten it here.
        assert verifier._remote is not None
        verifier._remote.cooldown_duration = 0
        token = jwt.encode({"sub": "u", "exp": later()}, first, "ES256", headers={"kid": "k1"})
        assert verifier.verify(token)["sub"] == "u"
        assert verifier.verify(token)["sub"] == "u"
        assert len(hits) == 1  # cached
        served["keys"].append(jwk(second, "k2"))
        rotated = jwt.encode({"sub": "v", "exp": later()}, second, "ES256", headers={"kid": "k2"})
        assert verifier.verify(rotated)["sub"] == "v"
        assert len(hits) == 2  # refetched for the unknown kid
        forged = jwt.encode(
            {"sub": "x", "exp": later()},
            ec.generate_private_key(ec.SECP256R1()),
            algorithm="ES256",
            headers={"kid": "k9"},
        )
        refused(verifier, forged, "key is not known")
    finally:
        server.shutdown()
        server.server_close()
