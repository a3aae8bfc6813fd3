"""Password hashing (argon2id), signed access tokens, API keys. No I/O."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import AuthenticationFailed
from core.models import Role

_hasher = PasswordHasher()
API_KEY_PREFIX = "cck_"
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against a fixed hash when the user does not exist keeps login timing uniform,
# so response time does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def burn_verify_time(password: str) -> None:
    verify_password(_DUMMY_HASH, password)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    role: Role
    expires_at: datetime


def issue_token(*, user_id: int, role: Role, secret: str, ttl_s: int, now: datetime) -> str:
    """A signed HS256 access token for a logged-in user."""
    payload = {
        "sub": str(user_id),
        "role": role.value,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_s)).timestamp()),
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def decode_token(token: str, *, secret: str, now: datetime) -> TokenClaims:
    """Verify signature and expiry; raise AuthenticationFailed otherwise."""
    # Expiry and issue time are checked against our Clock, not the host clock, so tests and
    # replays with a fixed clock behave like production.
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
        exp = int(payload["exp"])
        claims = TokenClaims(
            user_id=int(payload["sub"]),
            role=Role(payload["role"]),
            expires_at=datetime.fromtimestamp(exp, tz=now.tzinfo),
        )
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise AuthenticationFailed("invalid token") from exc
    return _unexpired(claims, now)


def _unexpired(claims: TokenClaims, now: datetime) -> TokenClaims:
    if now >= claims.expires_at:
        raise AuthenticationFailed("token expired", error_id="token_expired")
    return claims


class TokenVerifier:
    """`decode_token` that checks each token's signature once: parsing and HMAC-checking a token was a
    fifth of the caller lookup on every request (bench/api_load.py profile). A token's claims never
    change, so a token seen before only needs its expiry checked again."""

    def __init__(self, secret: str, *, max_tokens: int = 20_000) -> None:
        self._secret = secret
        self._max_tokens = max_tokens
        self._verified: dict[str, TokenClaims] = {}

    def verify(self, token: str, *, now: datetime) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = decode_token(token, secret=self._secret, now=now)
            if len(self._verified) >= self._max_tokens:  # a whole shift's tokens fit; past that,
                self._verified.clear()  # starting over only costs each token one more check
            self._verified[token] = claims
        return _unexpired(claims, now)


def new_api_key() -> tuple[str, str, str]:
    """Return (plaintext key, display prefix, sha256 hex) for a new API key."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:12], api_key_hash(key)


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
