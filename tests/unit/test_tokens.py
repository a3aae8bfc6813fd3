"""Access tokens: signature, expiry, and the verifier that checks each token's signature once."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import AuthenticationFailed
from core.models import Role
from core.process import freeze_startup_heap
from core.security import TokenVerifier, decode_token, issue_token

SECRET = "unit-secret-0123456789-0123456789-abcdef"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _token(user_id: int = 7, ttl_s: int = 3600, secret: str = SECRET) -> str:
    return issue_token(user_id=user_id, role=Role.AGENT, secret=secret, ttl_s=ttl_s, now=NOW)


def test_decode_checks_signature_and_expiry() -> None:
    assert decode_token(_token(), secret=SECRET, now=NOW).user_id == 7
    with pytest.raises(AuthenticationFailed):
        decode_token(_token(secret="another-secret-0123456789-0123456789-ab"), secret=SECRET, now=NOW)
    with pytest.raises(AuthenticationFailed) as expired:
        decode_token(_token(), secret=SECRET, now=NOW + timedelta(hours=1))
    assert expired.value.error_id == "token_expired"


def test_verifier_remembers_claims_but_still_expires_them() -> None:
    verifier = TokenVerifier(SECRET)
    token = _token()
    first = verifier.verify(token, now=NOW)
    assert verifier.verify(token, now=NOW + timedelta(minutes=59)) is first  # no second decode
    with pytest.raises(AuthenticationFailed) as expired:
        verifier.verify(token, now=NOW + timedelta(hours=1))
    assert expired.value.error_id == "token_expired"


def test_verifier_never_remembers_a_rejected_token() -> None:
    verifier = TokenVerifier(SECRET)
    forged = _token(secret="another-secret-0123456789-0123456789-ab")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            verifier.verify(forged, now=NOW)
    tampered = _token()[:-2] + "xx"
    with pytest.raises(AuthenticationFailed):
        verifier.verify(tampered, now=NOW)


def test_verifier_stays_bounded() -> None:
    verifier = TokenVerifier(SECRET, max_tokens=3)
    tokens = [_token(user_id=n) for n in range(10)]
    for token in tokens:
        verifier.verify(token, now=NOW)
    assert all(verifier.verify(t, now=NOW).user_id == n for n, t in enumerate(tokens))


def test_freeze_startup_heap_takes_existing_objects_out_of_collections() -> None:
    try:
        freeze_startup_heap()
        # This process has imported pytest, SQLAlchemy and the app's modules: tens of thousands of objects.
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
