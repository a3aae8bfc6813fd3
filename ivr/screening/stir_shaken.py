"""STIR/SHAKEN: parse a SIP Identity header (RFC 8224) and verify its PASSporT (RFC 8225, SHAKEN RFC 8588).

    Identity: <header>.<payload>.<signature>;info=<https://cert.example/sp.pem>;alg=ES256;ppt=shaken

Verification is offline and pure: the caller passes the certificates it trusts as a mapping from x5u
URL to PEM (fetched and vetted out of band), and `now`. We check, in order: header shape, alg ES256,
ppt shaken, x5u known (and equal to info=), certificate validity at `now` and a P-256 key, the
signature, iat within `max_age_s` of `now` (either side: a future iat is as suspect as an old one),
the claims (attest A/B/C, orig.tn, dest.tn[], origid), orig.tn equal to the presented caller and,
when given, the called number among dest.tn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ivr.screening.rules import canonical_digits, region_prefixes

Attestation = Literal["A", "B", "C"]
MAX_HEADER_CHARS = 8192


@dataclass(frozen=True, slots=True)
class AttestationResult:
    verified: bool
    attestation: Attestation | None  # only set when verified
    reason: str  # "verified" or a stable failure code (malformed, bad_alg, unknown_x5u, ...)
    origid: str = ""


@dataclass(frozen=True, slots=True)
class IdentityHeader:
    token: str
    info: str
    alg: str
    ppt: str
    params: tuple[tuple[str, str], ...] = ()


class IdentityError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_identity_header(value: str) -> IdentityHeader:
    """Split `<jwt>;info=<url>;alg=ES256;ppt=shaken` (parameters in any order, maybe quoted)."""
    if len(value) > MAX_HEADER_CHARS or not value.isascii() or any(c in value for c in "\r\n\0"):
        raise IdentityError("malformed", "Identity header too long or not plain ASCII")
    token, *raw_params = [part.strip() for part in value.strip().split(";")]
    if token.count(".") != 2 or not all(token.split(".")[:2]):
        raise IdentityError("malformed", "Identity header does not start with a full-form JWT")
    params: dict[str, str] = {}
    for raw in raw_params:
        name, sep, param_value = raw.partition("=")
        if not sep or not name.strip():
            raise IdentityError("malformed", f"bad Identity parameter {raw[:40]!r}")
        params[name.strip().lower()] = param_value.strip().strip('"')
    info = params.get("info", "")
    if not (info.startswith("<") and info.endswith(">")):
        raise IdentityError("malformed", "Identity info= must be <url>")
    return IdentityHeader(
        token=token,
        info=info[1:-1],
        alg=params.get("alg", "ES256"),  # RFC 8224: ES256 when absent
        ppt=params.get("ppt", ""),
        params=tuple(sorted(params.items())),
    )


@lru_cache(maxsize=256)
def _certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _tn_digits(tn: str, cc: str, np: str) -> set[str]:
    """A TN as SHAKEN carries it (E.164 digits, maybe "+") or as a caller is presented, both readings."""
    text = tn.strip()
    digits = text.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return set()
    return {digits, canonical_digits(text, cc, np)}


def verify_identity(
    header: str,
    *,
    caller: str,
    now: datetime,
    certificates: Mapping[str, str | bytes],
    called: str | None = None,
    max_age_s: float = 60.0,
    region: str = "CN",
) -> AttestationResult:
    """Verify a SHAKEN Identity header for a call presented with `caller`. Never raises."""
    try:
        return _verify(header, caller, now, certificates, called, max_age_s, region)
    except IdentityError as exc:
        return AttestationResult(False, None, exc.code)


def _verify(
    header: str,
    caller: str,
    now: datetime,
    certificates: Mapping[str, str | bytes],
    called: str | None,
    max_age_s: float,
    region: str,
) -> AttestationResult:
    parsed = parse_identity_header(header)
    if parsed.alg != "ES256":
        raise IdentityError("bad_alg", f"alg {parsed.alg!r}")
    if parsed.ppt.lower() != "shaken":
        raise IdentityError("bad_ppt", f"ppt {parsed.ppt!r}")
    try:
        jose = jwt.get_unverified_header(parsed.token)
    except jwt.PyJWTError as exc:
        raise IdentityError("malformed", f"PASSporT header: {exc}") from exc
    if jose.get("alg") != "ES256" or jose.get("ppt") != "shaken" or jose.get("typ", "passport") != "passport":
        raise IdentityError("bad_alg", "PASSporT header must say alg ES256, ppt shaken, typ passport")
    x5u = jose.get("x5u")
    if not isinstance(x5u, str) or x5u != parsed.info:
        raise IdentityError("x5u_mismatch", "PASSporT x5u differs from the Identity info= URL")
    pem = certificates.get(x5u)
    if pem is None:
        raise IdentityError("unknown_x5u", f"no trusted certificate for {x5u[:80]}")
    try:
        cert = _certificate(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise IdentityError("bad_certificate", str(exc)) from exc
    at = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise IdentityError("certificate_expired", "certificate not valid at the time of the call")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise IdentityError("bad_certificate", "certificate key is not P-256")
    try:
        # Time checks are ours (against `now`), never pyjwt's reading of the system clock.
        claims: dict[str, Any] = jwt.decode(
            parsed.token,
            key,
            algorithms=["ES256"],
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_aud": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise IdentityError("bad_signature", str(exc)) from exc
    except (jwt.PyJWTError, json.JSONDecodeError, ValueError) as exc:
        raise IdentityError("malformed", f"PASSporT: {exc}") from exc
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise IdentityError("bad_claims", "iat missing")
    if abs(at.timestamp() - iat) > max_age_s:
        raise IdentityError("stale_iat", f"iat is {at.timestamp() - iat:.0f} s from now")
    attest, orig, dest, origid = (claims.get(k) for k in ("attest", "orig", "dest", "origid"))
    if attest not in ("A", "B", "C"):
        raise IdentityError("bad_claims", "attest must be A, B or C")
    if not isinstance(orig, dict) or not isinstance(orig.get("tn"), str):
        raise IdentityError("bad_claims", "orig.tn missing")
    dest_tns = dest.get("tn") if isinstance(dest, dict) else None
    if not isinstance(dest_tns, list) or not dest_tns or not all(isinstance(t, str) for t in dest_tns):
        raise IdentityError("bad_claims", "dest.tn must be a non-empty list")
    if not isinstance(origid, str) or not origid:
        raise IdentityError("bad_claims", "origid missing")
    cc, np = region_prefixes(region)
    if not _tn_digits(orig["tn"], cc, np) & _tn_digits(caller, cc, np):
        raise IdentityError("orig_mismatch", "orig.tn is not the presented caller")
    if called is not None:
        wanted = _tn_digits(called, cc, np)
        if not any(_tn_digits(t, cc, np) & wanted for t in dest_tns):
            raise IdentityError("dest_mismatch", "called number not in dest.tn")
    return AttestationResult(True, attest, "verified", origid)


def make_identity_header(
    private_key: ec.EllipticCurvePrivateKey,
    *,
    x5u: str,
    orig: str,
    dest: list[str],
    attest: Attestation,
    iat: int,
    origid: str,
) -> str:
    """Sign a SHAKEN PASSporT and wrap it as an Identity header value (test fixtures, simulators)."""
    token = jwt.encode(
        {"attest": attest, "dest": {"tn": dest}, "iat": iat, "orig": {"tn": orig}, "origid": origid},
        private_key,
        algorithm="ES256",
        headers={"ppt": "shaken", "typ": "passport", "x5u": x5u},
    )
    return f"{token};info=<{x5u}>;alg=ES256;ppt=shaken"
