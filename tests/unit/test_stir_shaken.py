"""ivr.screening.stir_shaken: Identity header parsing, PASSporT verification with a test-time P-256 cert."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.screening.stir_shaken import (
    IdentityError,
    make_identity_header,
    parse_identity_header,
    verify_identity,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
IAT = int(NOW.timestamp())
X5U = "https://cert.example.org/sp.pem"
CALLER = "+8613812345678"
CALLED = "02161234000"


def _cert(key: ec.EllipticCurvePrivateKey, *, days: int = 30, start: datetime = NOW) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SHAKEN test SP")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - timedelta(days=1))
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def certs(key: ec.EllipticCurvePrivateKey) -> dict[str, str | bytes]:
    return {X5U: _cert(key).decode()}


def _header(key: ec.EllipticCurvePrivateKey, **overrides: object) -> str:
    fields: dict[str, object] = {
        "x5u": X5U,
        "orig": "8613812345678",
        "dest": ["862161234000"],
        "attest": "A",
        "iat": IAT,
        "origid": "123e4567-e89b-12d3-a456-426655440000",
    }
    fields.update(overrides)
    return make_identity_header(key, **fields)  # type: ignore[arg-type]


def test_parse_identity_header() -> None:
    parsed = parse_identity_header('aaa.bbb.ccc ; info=<https://x/y.pem> ; ALG=ES256 ; ppt="shaken"')
    assert (parsed.token, parsed.info, parsed.alg, parsed.ppt) == (
        "aaa.bbb.ccc",
        "https://x/y.pem",
        "ES256",
        "shaken",
    )


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "not-a-jwt;info=<https://x>",
        "a.b.c",  # no info
        "a.b.c;info=https://x",  # info without <>
        "a.b.c;info=<https://x>;alg",
        "..c;info=<https://x>",  # compact form is not SHAKEN
        "a.b.c;info=<https://x>\r\nVia: evil",
        "a.b.c;info=<https://x>;ppt=shakén",
        "a.b.c;info=<https://x>" + "x" * 9000,
    ],
)
def test_parse_rejects(bad: str) -> None:
    with pytest.raises(IdentityError):
        parse_identity_header(bad)


@pytest.mark.parametrize("attest", ["A", "B", "C"])
def test_verified(key: ec.EllipticCurvePrivateKey, certs: dict[str, str | bytes], attest: str) -> None:
    result = verify_identity(
        _header(key, attest=attest), caller=CALLER, called=CALLED, now=NOW, certificates=certs
    )
    assert (result.verified, result.attestation, result.reason) == (True, attest, "verified")
    assert result.origid.startswith("123e4567")


@pytest.mark.parametrize("caller", ["+8613812345678", "8613812345678", "13812345678", "008613812345678"])
def test_caller_forms(key: ec.EllipticCurvePrivateKey, certs: dict[str, str | bytes], caller: str) -> None:
    assert verify_identity(_header(key), caller=caller, now=NOW, certificates=certs).verified


def _tamper_payload(header: str, **claims: object) -> str:
    token, rest = header.split(";", 1)
    head, payload, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data.update(claims)
    new = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{head}.{new}.{sig};{rest}"


@pytest.mark.parametrize(
    ("overrides", "now_offset_s", "caller", "called", "reason"),
    [
        ({"iat": IAT - 61}, 0, CALLER, None, "stale_iat"),
        ({"iat": IAT - 60}, 0, CALLER, None, "verified"),
        ({"iat": IAT + 61}, 0, CALLER, None, "stale_iat"),
        ({}, 120, CALLER, None, "stale_iat"),
        ({"orig": "8613900000000"}, 0, CALLER, None, "orig_mismatch"),
        ({}, 0, "13900000000", None, "orig_mismatch"),
        ({}, 0, "", None, "orig_mismatch"),
        ({}, 0, CALLER, "02100000000", "dest_mismatch"),
        ({"dest": ["862100000000", "862161234000"]}, 0, CALLER, CALLED, "verified"),
        ({"attest": "D"}, 0, CALLER, None, "bad_claims"),
        ({"dest": []}, 0, CALLER, None, "bad_claims"),
        ({"origid": ""}, 0, CALLER, None, "bad_claims"),
        ({"x5u": "https://evil.example/cert.pem"}, 0, CALLER, None, "x5u_mismatch"),
    ],
)
def test_claim_checks(
    key: ec.EllipticCurvePrivateKey,
    certs: dict[str, str | bytes],
    overrides: dict[str, object],
    now_offset_s: int,
    caller: str,
    called: str | None,
    reason: str,
) -> None:
    header = _header(key, **overrides)
    if "x5u" in overrides:
        header = header.replace(f"info=<{overrides['x5u']}>", f"info=<{X5U}>")
    now = NOW + timedelta(seconds=now_offset_s)
    result = verify_identity(header, caller=caller, called=called, now=now, certificates=certs)
    assert result.reason == reason
    assert result.verified is (reason == "verified")
    assert result.attestation is None or result.verified


def test_signature_and_trust(key: ec.EllipticCurvePrivateKey, certs: dict[str, str | bytes]) -> None:
    header = _header(key)
    tampered = _tamper_payload(header, attest="A", orig={"tn": "8613900000000"})
    assert (
        verify_identity(tampered, caller="13900000000", now=NOW, certificates=certs).reason == "bad_signature"
    )
    other = ec.generate_private_key(ec.SECP256R1())
    assert (
        verify_identity(_header(other), caller=CALLER, now=NOW, certificates=certs).reason == "bad_signature"
    )
    assert verify_identity(header, caller=CALLER, now=NOW, certificates={}).reason == "unknown_x5u"
    expired = {X5U: _cert(key, days=1, start=NOW - timedelta(days=10))}
    assert (
        verify_identity(header, caller=CALLER, now=NOW, certificates=expired).reason == "certificate_expired"
    )
    assert (
        verify_identity(header, caller=CALLER, now=NOW, certificates={X5U: "junk"}).reason
        == "bad_certificate"
    )
    p384 = ec.generate_private_key(ec.SECP384R1())
    wrong_curve = {X5U: _cert(p384)}
    assert (
        verify_identity(header, caller=CALLER, now=NOW, certificates=wrong_curve).reason == "bad_certificate"
    )
    naive = verify_identity(header, caller=CALLER, now=NOW.replace(tzinfo=None), certificates=certs)
    assert naive.verified


def test_header_params_and_alg(key: ec.EllipticCurvePrivateKey, certs: dict[str, str | bytes]) -> None:
    header = _header(key)
    for bad, reason in [
        (header.replace("alg=ES256", "alg=RS256"), "bad_alg"),
        (header.replace("ppt=shaken", "ppt=div"), "bad_ppt"),
    ]:
        assert verify_identity(bad, caller=CALLER, now=NOW, certificates=certs).reason == reason
    hs = jwt.encode({"attest": "A"}, "s" * 32, algorithm="HS256", headers={"ppt": "shaken", "x5u": X5U})
    result = verify_identity(
        f"{hs};info=<{X5U}>;alg=ES256;ppt=shaken", caller=CALLER, now=NOW, certificates=certs
    )
    assert result.reason == "bad_alg"


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=300))
def test_never_raises(certs: dict[str, str | bytes], value: str) -> None:
    result = verify_identity(value, caller=CALLER, now=NOW, certificates=certs)
    assert not result.verified
