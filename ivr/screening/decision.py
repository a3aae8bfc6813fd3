"""The pure inbound screening decision: evidence in, allow / challenge / block with every reason out.

Checks (each reason code is stable; dashboards and the decision log group by it):

hard checks (an allow rule cannot override them)
  caller_empty, caller_anonymous, caller_not_numeric   -> config.missing_caller_action (block by default)
  caller_too_long (more digits than any dialable number) -> block
  caller_all_zeros                                      -> block
  protected_number_unauthorised (110, 95533 ... from a trunk not authorised for it)  -> block
  trunk_caller_not_allowed (outside the trunk's screening group)                    -> block
number rules
  rule_block / rule_challenge / rule_allow; an allow rule short-circuits every soft check below
  (that is what an operator allowlist is for: a partner's PBX that bursts, a short code with an
  outbound agreement), but never a hard check: those catch spoofing that no allowlist entry can vouch for.
soft checks
  disguise_prefix (00196..., 17900...)                   -> config.disguise_action
  caller_<reason> from core.phone (too_short, too_long, invalid_for_region, unknown_region, ...) -> block
  short_code_not_allowlisted (a valid short code no trunk/rule authorises)                       -> block
  neighbour_spoof (shares the first N national digits with the called number)                    -> challenge
  stir_unverified / stir_attestation_c -> challenge; stir_attestation_a / _b -> allow (informational;
  a verified A also cancels neighbour_spoof: the originating carrier vouches for that exact number)
  bulk_caller / bulk_prefix / bulk_pattern (from the bulk detector's verdict) -> config.bulk_action
informational (action allow): protected_number_authorised, short_code_authorised.

Combination: block beats challenge beats allow; every reason found is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import phonenumbers

from core.phone import InvalidPhoneNumber, is_short_service_code, normalize
from ivr.schemas import ScreeningSettings
from ivr.screening.bulk import BulkVerdict
from ivr.screening.rules import (
    ACTION_RANK,
    CompiledRules,
    RuleError,
    canonical_digits,
    compile_pattern,
    region_prefixes,
)
from ivr.screening.stir_shaken import AttestationResult

Action = Literal["allow", "challenge", "block"]  # also the RuleAction values
_ANONYMOUS = frozenset({"unknown", "anonymous", "restricted", "private", "unavailable", "withheld"})
_TYPE_DESCS: tuple[str, ...] = ("mobile", "fixed_line", "toll_free", "premium_rate", "shared_cost")
_TYPE_DESCS += ("voip", "personal_number", "pager", "uan", "voicemail")
MAX_CALLER_DIGITS = 20  # "00" + the 15 digits of E.164 + slack; longer is never a number


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """What we know about one inbound call. Strings are as presented: hostile, possibly CR/LF or unicode."""

    caller: str
    called: str = ""
    trunk: str = ""
    now: datetime
    caller_name: str = ""
    identity_header: str | None = None
    campaign_id: str | None = None  # when the called DID belongs to a campaign: campaign-scoped rules


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    detail: str = ""
    rule_id: int | None = None
    action: Action = "allow"  # what this finding alone asks for; "allow" means informational


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reasons: tuple[Reason, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)


@dataclass(frozen=True, slots=True)
class TrunkPolicy:
    """A trunk's screening group (empty: any caller) and the protected/short numbers it may present."""

    name: str
    allowed_caller_patterns: tuple[str, ...] = ()
    authorised_protected_numbers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _TrunkMatcher:
    restricted: bool
    exact: frozenset[str]
    pattern: re.Pattern[str] | None
    authorised: frozenset[str]

    def allows(self, key: str) -> bool:
        return key in self.exact or (self.pattern is not None and self.pattern.fullmatch(key) is not None)


@dataclass(frozen=True, kw_only=True)
class ScreeningConfig:
    protected_numbers: tuple[str, ...] = ()
    disguise_prefixes: tuple[str, ...] = ()
    disguise_action: Action = "challenge"
    neighbour_spoof_digits: int = 7
    bulk_window_s: int = 60
    bulk_caller_threshold: int = 5
    bulk_prefix_threshold: int = 30
    bulk_action: Action = "challenge"
    fail_policy: Action = "allow"
    missing_caller_action: Action = "block"
    trunks: Mapping[str, TrunkPolicy] = field(default_factory=dict)
    region: str = "CN"
    # Derived in __post_init__ so that screen() does no per-call compilation.
    rejected_patterns: tuple[tuple[str, str], ...] = field(init=False, default=())
    _matchers: Mapping[str, _TrunkMatcher] = field(init=False, repr=False, default_factory=dict)
    _protected: frozenset[str] = field(init=False, repr=False, default=frozenset())
    _service_max: int = field(init=False, repr=False, default=0)  # longest protected/authorised form

    def __post_init__(self) -> None:
        cc, np = region_prefixes(self.region)
        rejected: list[tuple[str, str]] = []
        matchers: dict[str, _TrunkMatcher] = {}
        for name, trunk in self.trunks.items():
            exact: set[str] = set()
            regexes: list[str] = []
            for raw in trunk.allowed_caller_patterns:
                try:
                    compiled = compile_pattern(raw, cc, np)
                except RuleError as exc:
                    rejected.append((name, str(exc)))
                    continue
                text = compiled.regex.pattern
                if text.isdigit():
                    exact.add(text)  # plain numbers: a set lookup, not one more regex alternative
                else:
                    regexes.append(text)
            matchers[name] = _TrunkMatcher(
                # A trunk whose patterns all failed to compile stays restricted: fail closed, not open.
                restricted=bool(trunk.allowed_caller_patterns),
                exact=frozenset(exact),
                pattern=re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None,
                authorised=frozenset(
                    _service_forms(n.strip(), cc)[-1] for n in trunk.authorised_protected_numbers
                ),
            )
        object.__setattr__(self, "rejected_patterns", tuple(rejected))
        object.__setattr__(self, "_matchers", matchers)
        protected = frozenset(_service_forms(n.strip(), cc)[-1] for n in self.protected_numbers)
        object.__setattr__(self, "_protected", protected)
        forms = [len(f) for f in protected] + [len(f) for m in matchers.values() for f in m.authorised]
        object.__setattr__(self, "_service_max", max(forms, default=0) + len(cc))  # "86" + form

    @classmethod
    def from_settings(
        cls, settings: ScreeningSettings, trunks: Iterable[Any] = (), *, region: str = "CN", **extra: Any
    ) -> ScreeningConfig:
        """From the operator settings and trunk rows/TrunkPolicy values (anything with the three fields)."""
        policies = {
            t.name: TrunkPolicy(
                t.name, tuple(t.allowed_caller_patterns), tuple(t.authorised_protected_numbers)
            )
            for t in trunks
        }
        return cls(
            protected_numbers=tuple(settings.protected_numbers),
            disguise_prefixes=tuple(settings.disguise_prefixes),
            disguise_action=settings.disguise_action,
            neighbour_spoof_digits=settings.neighbour_spoof_digits,
            bulk_window_s=settings.bulk_window_s,
            bulk_caller_threshold=settings.bulk_caller_threshold,
            bulk_prefix_threshold=settings.bulk_prefix_threshold,
            bulk_action=settings.bulk_action,
            fail_policy=settings.fail_policy,
            trunks=policies,
            region=region,
            **extra,
        )


def _service_forms(digits: str, cc: str) -> tuple[str, ...]:
    """How a short/service number may be presented: 110, +86110 / 0086110 (digits 86110), 86110."""
    bare = digits.removeprefix("+").removeprefix("00")
    return (bare, bare[len(cc) :]) if bare.startswith(cc) else (bare,)


class _NumberingPlan:
    """core.phone.normalize's verdict, fast.

    normalize() (phonenumbers) costs ~45 µs, too slow for 100k decisions/s. For the forms real callers
    use (national with or without trunk prefix, +cc / 00cc / bare cc) we apply the region's own
    phonenumbers patterns directly and answer only when the result is certain to equal normalize's
    (pinned by a property test); every other input goes to normalize() through a bounded cache.
    """

    def __init__(self, region: str) -> None:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        assert meta is not None and meta.general_desc is not None
        self.region = region
        self.cc, self.np = region_prefixes(region)
        self.general = re.compile(meta.general_desc.national_number_pattern or "$^")
        descs = [getattr(meta, n) for n in _TYPE_DESCS]
        self.types = [
            (frozenset(d.possible_length), re.compile(d.national_number_pattern))
            for d in descs
            if d is not None and d.national_number_pattern
        ]
        usable = meta.national_prefix_transform_rule is None and bool(meta.national_prefix_for_parsing)
        self.npfp = re.compile(meta.national_prefix_for_parsing or "") if usable else None
        self.idd = re.compile(meta.international_prefix or "$^")
        self.lengths = sorted(meta.general_desc.possible_length)
        self.local_lengths = frozenset(meta.general_desc.possible_length_local_only)

    def _nsn_ok(self, x: str) -> bool:
        return self.general.fullmatch(x) is not None and any(
            len(x) in lengths and rx.fullmatch(x) for lengths, rx in self.types
        )

    def _fast(self, digits: str, plus: bool) -> str | None:
        """E.164 digits when certainly valid, else None (= ask normalize)."""
        cc, npfp = self.cc, self.npfp
        if npfp is None:
            return None
        if plus or digits.startswith("00"):
            rest = digits if plus else digits[2:]
            x = rest[len(cc) :]
            if rest.startswith(cc) and self._nsn_ok(x) and not npfp.match(x):
                return cc + x
            return None
        if digits.startswith(cc) and not self.general.fullmatch(digits):
            x = digits[len(cc) :]
            if self._nsn_ok(x) and not npfp.match(x) and not self.idd.match(digits):
                return cc + x
            return None
        np = self.np
        if np and digits.startswith(np):
            x = digits[len(np) :]
            m = npfp.match(digits)
            if (
                m is not None
                and m.end() == len(np)
                and not x.startswith("0")
                and not self.general.fullmatch(digits)
                and not self.idd.match(digits)
                and self._nsn_ok(x)
            ):
                return cc + x
            return None
        if self._nsn_ok(digits) and not npfp.match(digits) and not self.idd.match(digits):
            return cc + digits
        return None

    def _fast_invalid(self, digits: str, plus: bool) -> str | None:
        """normalize's reason for a bare national number (no prefix to strip) that is not valid, else None.

        Malformed callers are often unique (truncated or padded numbers), so a cache does not help them.
        """
        if (
            plus
            or self.npfp is None
            or not 2 <= len(digits) <= 17
            or digits.startswith(("00", self.cc))
            or (self.np and digits.startswith(self.np))
            or self.npfp.match(digits)
            or self.idd.match(digits)
            or self._nsn_ok(digits)
        ):
            return None
        length = len(digits)  # phonenumbers' own length test (is_possible_number_with_reason)
        if length in self.local_lengths:
            return "invalid_for_region"
        if length < self.lengths[0]:
            return "too_short"
        if length > self.lengths[-1]:
            return "too_long"
        return "invalid_for_region"

    def check(self, digits: str, plus: bool) -> tuple[str | None, str | None]:
        """(normalize's reason code or None, E.164 digits or None)."""
        key = self._fast(digits, plus)
        if key is not None:
            return None, key
        reason = self._fast_invalid(digits, plus)
        if reason is not None:
            return reason, None
        return _slow_check(("+" if plus else "") + digits, self.region)


@lru_cache(maxsize=65536)
def _slow_check(text: str, region: str) -> tuple[str | None, str | None]:
    try:
        return None, normalize(text, region).e164[1:]
    except InvalidPhoneNumber as exc:
        return exc.reason_code, None


@lru_cache(maxsize=65536)
def _short_code(digits: str, region: str) -> bool:
    return is_short_service_code(digits, region)


@lru_cache(maxsize=16)
def _plan(region: str) -> _NumberingPlan:
    return _NumberingPlan(region)


def _parse_caller(raw: str, missing: Action) -> tuple[str, bool, Reason | None]:
    """(digits, presented with "+", problem). Strict: ASCII digits and one leading "+" only."""
    text = (raw or "").strip(" \t")
    if not text:
        return "", False, Reason("caller_empty", "no caller number", None, missing)
    if text.lower() in _ANONYMOUS:
        return "", False, Reason("caller_anonymous", text.lower(), None, missing)
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not (digits.isascii() and digits.isdigit()):
        return "", False, Reason("caller_not_numeric", repr(text[:40]), None, missing)
    if len(digits) > MAX_CALLER_DIGITS:
        return "", False, Reason("caller_too_long", f"{len(digits)} digits", None, "block")
    return digits, plus, None


def _disguise(intl: str, prefixes: tuple[str, ...], cc: str) -> str | None:
    """The disguise prefix `intl` starts with, also behind our own country code (+86 17900...)."""
    if intl.startswith(prefixes):  # one C-level call for the common case: no disguise
        return next(p for p in prefixes if intl.startswith(p))
    national = intl[2 + len(cc) :] if intl.startswith("00" + cc) else ""
    if national and national.startswith(prefixes):
        return next(p for p in prefixes if national.startswith(p))
    return None


@lru_cache(maxsize=4096)  # called numbers are our own few DIDs: parse each once
def caller_key(raw: str, region: str = "CN") -> str | None:
    """The canonical digits screen() matches rules with; feed the same to the bulk detector."""
    digits, plus, problem = _parse_caller(raw, "block")
    if problem is not None:
        return None
    cc, np = region_prefixes(region)
    return _plan(region).check(digits, plus)[1] or canonical_digits(("+" if plus else "") + digits, cc, np)


def screen(
    evidence: Evidence,
    rules: CompiledRules,
    config: ScreeningConfig,
    stats: BulkVerdict | None = None,
    identity: AttestationResult | None = None,
) -> Decision:
    """Decide one call. Never raises: an internal error yields config.fail_policy with `screen_error`."""
    try:
        reasons = _screen(evidence, rules, config, stats, identity)
    except Exception as exc:  # a bug must not take the inbound line down; the reason makes it visible
        return Decision(
            config.fail_policy, (Reason("screen_error", type(exc).__name__, None, config.fail_policy),)
        )
    action: Action = "allow"
    for reason in reasons:
        if ACTION_RANK[reason.action] > ACTION_RANK[action]:
            action = reason.action
    return Decision(action, tuple(reasons))


def _screen(
    ev: Evidence,
    rules: CompiledRules,
    config: ScreeningConfig,
    stats: BulkVerdict | None,
    identity: AttestationResult | None,
) -> list[Reason]:
    digits, plus, problem = _parse_caller(ev.caller, config.missing_caller_action)
    if problem is not None:
        return [problem]
    if digits.count("0") == len(digits):
        return [Reason("caller_all_zeros", digits, None, "block")]
    plan = _plan(config.region)
    cc = plan.cc
    reasons: list[Reason] = []
    trunk = config._matchers.get(ev.trunk)
    authorised = trunk.authorised if trunk is not None else frozenset()
    explained = False  # the number's odd shape is already accounted for: skip the numbering-plan check
    vouched = False  # a trunk is authorised to present this service number
    if len(digits) <= config._service_max:  # ordinary numbers are longer than any service number
        for form in _service_forms(digits, cc):
            if form in config._protected:
                explained = True
                if form in authorised:
                    vouched = True
                    reasons.append(Reason("protected_number_authorised", form))
                else:
                    reasons.append(Reason("protected_number_unauthorised", form, None, "block"))
                break
            if form in authorised:
                explained = vouched = True
                reasons.append(Reason("short_code_authorised", form))
                break
    intl = ("00" + digits) if plus else digits
    disguise = _disguise(intl, config.disguise_prefixes, cc)
    plan_reason, key = (None, None) if (explained or disguise) else plan.check(digits, plus)
    if key is None:
        key = canonical_digits(("+" if plus else "") + digits, cc, plan.np)
    if trunk is not None and trunk.restricted and not vouched and not trunk.allows(key):
        reasons.append(Reason("trunk_caller_not_allowed", ev.trunk, None, "block"))
    scope_keys = (
        (f"trunk:{ev.trunk}",)
        if ev.campaign_id is None
        else (f"trunk:{ev.trunk}", f"campaign:{ev.campaign_id}")
    )
    rule = rules.match(key, scope_keys=scope_keys, now=ev.now)
    if rule is not None:
        reasons.append(
            Reason(
                f"rule_{rule.action}", rule.reason or f"{rule.kind} {rule.value}", rule.rule_id, rule.action
            )
        )
        if rule.action == "allow":
            return reasons
    if disguise is not None:
        reasons.append(Reason("disguise_prefix", disguise, None, config.disguise_action))
    if plan_reason is not None:
        if len(digits) <= 8 and _short_code(digits, config.region):
            reasons.append(Reason("short_code_not_allowlisted", digits, None, "block"))
        else:
            reasons.append(Reason(f"caller_{plan_reason}", digits, None, "block"))
    attested_a = identity is not None and identity.verified and identity.attestation == "A"
    n = config.neighbour_spoof_digits
    if n > 0 and ev.called and not attested_a and key.startswith(cc):
        called = caller_key(ev.called, config.region)
        if called is not None and called != key and called.startswith(cc):
            head = len(cc) + n
            if len(key) >= head and key[:head] == called[:head]:
                reasons.append(
                    Reason("neighbour_spoof", f"first {n} digits of {called[len(cc) :]}", None, "challenge")
                )
    if identity is not None:
        if not identity.verified:
            reasons.append(Reason("stir_unverified", identity.reason, None, "challenge"))
        elif identity.attestation == "C":
            reasons.append(Reason("stir_attestation_c", identity.reason, None, "challenge"))
        elif identity.attestation in ("A", "B"):
            reasons.append(Reason(f"stir_attestation_{identity.attestation.lower()}", identity.reason))
    if stats is not None and stats.flagged:
        for code, detail in stats.reasons:
            reasons.append(Reason(code, detail, None, config.bulk_action))
    return reasons
