"""Number-rule compiler: exact, prefix, range and pattern rules with scope and expiry, matched in µs.

Every rule value and every number looked up is first put in one canonical digit form, E.164 digits
without "+", so that an operator may write `13812345678`, `+8613812345678` or `008613812345678` for
the same number (see `canonical_digits`).

Precedence (pinned by tests/unit/test_number_rules.py):

1. The most specific *kind* wins: exact > range > prefix > pattern. Within a kind: the narrowest
   range, the longest prefix, the most precise pattern (fixed length, then fewer/narrower wildcards).
2. At equal number specificity, a rule scoped to the trunk or campaign beats a global one.
3. Still tied: block > challenge > allow. Two equally specific rules that disagree are an operator
   mistake; in a fraud filter the safe reading is the stricter one, and an exception remains easy
   to express with a *more specific* allow (an exact allow inside a blocked prefix).
4. Still tied: the lowest rule id (the oldest rule), so the answer is deterministic.

Expired rules never match; a rule scoped `trunk:<name>` / `campaign:<id>` only matches when that key
is among the `scope_keys` of the lookup; `global` rules always apply.
"""

from __future__ import annotations

import gc
import re
from array import array
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

import phonenumbers

RuleKind = Literal["exact", "prefix", "range", "pattern"]
RuleAction = Literal["allow", "block", "challenge"]
KINDS: frozenset[str] = frozenset({"exact", "prefix", "range", "pattern"})
ACTION_RANK: dict[str, int] = {"allow": 0, "challenge": 1, "block": 2}
GLOBAL = "global"

# The admin API accepts X/N/Z, [..] classes, "-" (readability only), "." and "!"; we also accept the
# Asterisk "_" marker and lower case so a pattern pasted from a dialplan works as is.
_PATTERN_CHARS = re.compile(r"_?\+?[0-9XNZxnz\[\]\-.!]{1,40}")
_WILDCARD = {"X": "[0-9]", "N": "[2-9]", "Z": "[1-9]"}
_WILDCARD_WIDTH = {"X": 10, "N": 8, "Z": 9}


class RuleError(ValueError):
    """A rule that cannot be compiled; `compile_rules` collects these instead of failing the load."""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One number rule as the screening engine needs it (a plain value, not the ORM row)."""

    id: int
    kind: RuleKind
    value: str
    action: RuleAction
    value_end: str = ""
    scope: str = GLOBAL
    expires_at: datetime | None = None
    reason: str = ""
    source: str = "manual"

    @classmethod
    def from_row(cls, row: Any) -> RuleSpec:
        """Build from anything shaped like ivr.models.NumberRule (duck-typed to keep this module pure)."""
        return cls(
            id=int(row.id),
            kind=row.kind,
            value=row.value,
            action=row.action,
            value_end=row.value_end or "",
            scope=row.scope or GLOBAL,
            expires_at=row.expires_at,
            reason=row.reason or "",
            source=row.source or "",
        )


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The rule that decided a lookup."""

    rule_id: int
    action: RuleAction
    kind: RuleKind
    value: str
    scope: str
    reason: str


@lru_cache(maxsize=64)
def region_prefixes(region: str) -> tuple[str, str]:
    """(country calling code, national trunk prefix) of a region, e.g. ("86", "0") for CN."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
    if metadata is None:
        raise RuleError(f"unknown region {region!r}")
    return str(metadata.country_code), metadata.national_prefix or ""


def canonical_digits(value: str, country_code: str, national_prefix: str = "0") -> str:
    """E.164 digits (no "+") of a number or number prefix written in international or national form.

    Purely syntactic, so it also works for prefixes and patterns: "+X" and "00X" are international;
    "0X" (national prefix) and bare "X" are national and get the country code. `value` must already
    be digits with an optional leading "+" (patterns may hold wildcards after the leading literals).
    """
    if value.startswith("+"):
        return value[1:]
    if value.startswith("00"):
        return value[2:]
    if national_prefix and value.startswith(national_prefix):
        return country_code + value[len(national_prefix) :]
    return country_code + value


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """An Asterisk-style pattern compiled to a regex, with what we need to rank and index it."""

    regex: re.Pattern[str]
    literal_prefix: str
    specificity: tuple[int, int, int]


def compile_pattern(pattern: str, country_code: str, national_prefix: str = "0") -> CompiledPattern:
    """Compile `_0NXXXXXXX`-style patterns: X=0-9, N=2-9, Z=1-9, [1-5] classes, "." one or more, "!" any."""
    text = pattern.strip()
    if not _PATTERN_CHARS.fullmatch(text):
        raise RuleError(f"{pattern!r} is not a number pattern")
    text = canonical_digits(text.removeprefix("_").replace("-", ""), country_code, national_prefix)
    parts: list[str] = []
    literal: list[str] = []
    in_literal_prefix = True
    precision = 0  # sum over positions of (10 - choices): literal 9, Z 1, X 0, "." and "!" nothing
    open_ended = False
    i = 0
    while i < len(text):
        ch = text[i].upper()
        if ch.isdigit():
            parts.append(ch)
            precision += 9
            if in_literal_prefix:
                literal.append(ch)
        elif ch in _WILDCARD:
            parts.append(_WILDCARD[ch])
            precision += 10 - _WILDCARD_WIDTH[ch]
            in_literal_prefix = False
        elif ch == "[":
            end = text.find("]", i)
            body = text[i + 1 : end] if end > 0 else ""
            if not re.fullmatch(r"(?:[0-9](?:-[0-9])?)+", body):
                raise RuleError(f"{pattern!r} has a bad [...] class")
            choices: set[str] = set()
            for lo, hi in re.findall(r"([0-9])(?:-([0-9]))?", body):
                choices.update(str(d) for d in range(int(lo), int(hi or lo) + 1))
            parts.append("[" + "".join(sorted(choices)) + "]")
            precision += 10 - len(choices)
            in_literal_prefix = False
            i = end
        elif ch in ".!":
            parts.append("[0-9]+" if ch == "." else "[0-9]*")
            open_ended = True
            in_literal_prefix = False
        else:
            raise RuleError(f"{pattern!r} has an unexpected {ch!r}")
        i += 1
    return CompiledPattern(
        regex=re.compile("".join(parts)),
        literal_prefix="".join(literal),
        specificity=(0 if open_ended else 1, precision, len(literal)),
    )


_Candidate = tuple[tuple[int, ...], RuleSpec]
_Ranges = tuple["array[int]", "array[int]", "array[int]", list[RuleSpec]]
MAX_RANGE_DIGITS = 19  # canonical numbers are at most 17 digits; 19 still fits an unsigned 64-bit int


@dataclass(slots=True)
class CompiledRules:
    """Rules indexed for lookup. Build with `compile_rules`; read-only afterwards (safe to share)."""

    country_code: str = "86"
    national_prefix: str = "0"
    exact: dict[str, list[RuleSpec]] = field(default_factory=dict)  # lists: never mutated after build
    prefix: dict[str, list[RuleSpec]] = field(default_factory=dict)
    prefix_lengths: tuple[int, ...] = ()  # longest first
    # Per length: sorted lows, their highs, the running max of highs (to stop scanning early), rules.
    # Numbers as unsigned 64-bit ints in arrays: contiguous memory keeps bisect at ~1 µs with 10^5 ranges.
    ranges: dict[int, _Ranges] = field(default_factory=dict)
    patterns: dict[str, list[tuple[CompiledPattern, RuleSpec]]] = field(default_factory=dict)
    pattern_prefix_lengths: tuple[int, ...] = ()
    rejected: tuple[tuple[int, str], ...] = ()  # (rule id, why) for rules we could not compile
    count: int = 0

    def canonical(self, number: str) -> str:
        """`canonical_digits` in this rule set's numbering plan."""
        return canonical_digits(number, self.country_code, self.national_prefix)

    def match(
        self, number_digits: str, *, scope_keys: tuple[str, ...] = (), now: datetime
    ) -> RuleMatch | None:
        """The deciding rule for canonical `number_digits` (see `canonical`), or None."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        found = self.exact.get(number_digits)
        if found and (best := _best(((0,), s) for s in found if _live(s, scope_keys, now))):
            return best
        length_ranges = self.ranges.get(len(number_digits))
        if length_ranges is not None:
            lows, highs, max_highs, specs = length_ranges
            value = int(number_digits)
            j = bisect_right(lows, value) - 1
            cands: list[_Candidate] = []
            while j >= 0 and max_highs[j] >= value:
                spec = specs[j]
                if highs[j] >= value and _live(spec, scope_keys, now):
                    cands.append(((lows[j] - highs[j],), spec))  # narrower is better
                j -= 1
            if cands:
                return _best(cands)
        for length in self.prefix_lengths:
            found = self.prefix.get(number_digits[:length]) if length <= len(number_digits) else None
            if found and (best := _best(((0,), s) for s in found if _live(s, scope_keys, now))):
                return best
        pattern_cands: list[_Candidate] = []
        for length in self.pattern_prefix_lengths:
            bucket = self.patterns.get(number_digits[:length]) if length <= len(number_digits) else None
            for compiled, spec in bucket or ():
                if compiled.regex.fullmatch(number_digits) and _live(spec, scope_keys, now):
                    pattern_cands.append((compiled.specificity, spec))
        return _best(pattern_cands)


def _live(spec: RuleSpec, scope_keys: tuple[str, ...], now: datetime) -> bool:
    if spec.expires_at is not None and spec.expires_at <= now:
        return False
    return spec.scope == GLOBAL or spec.scope in scope_keys


def _best(candidates: Iterable[_Candidate]) -> RuleMatch | None:
    best: tuple[tuple[int, ...], RuleSpec] | None = None
    best_key: tuple[Any, ...] = ()
    for specificity, spec in candidates:
        key = (specificity, spec.scope != GLOBAL, ACTION_RANK[spec.action], -spec.id)
        if best is None or key > best_key:
            best, best_key = (specificity, spec), key
    if best is None:
        return None
    spec = best[1]
    return RuleMatch(spec.id, spec.action, spec.kind, spec.value, spec.scope, spec.reason)


def _digits(value: str, cc: str, np: str) -> str:
    text = value.strip()
    digits = text[1:] if text.startswith("+") else text
    if not (digits.isdigit() and digits.isascii() and len(digits) <= 32):  # str methods: 1M rules load fast
        raise RuleError(f"{value!r} is not a number")
    return canonical_digits(text, cc, np)


def compile_rules(specs: Iterable[RuleSpec], *, region: str = "CN") -> CompiledRules:
    """Index rules for `CompiledRules.match`. Bad rules are skipped and listed in `.rejected`.

    The cyclic garbage collector is paused while building (we create millions of acyclic objects,
    which would otherwise trigger repeated full collections); a long-running screening process
    should call gc.freeze() after loading, so those objects are not rescanned during calls either.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _compile(specs, region)
    finally:
        if paused:
            gc.enable()


def _compile(specs: Iterable[RuleSpec], region: str) -> CompiledRules:
    cc, np = region_prefixes(region)
    exact: dict[str, list[RuleSpec]] = {}
    prefix: dict[str, list[RuleSpec]] = {}
    range_rows: dict[int, list[tuple[str, str, RuleSpec]]] = {}
    patterns: dict[str, list[tuple[CompiledPattern, RuleSpec]]] = {}
    rejected: list[tuple[int, str]] = []
    count = 0
    for spec in specs:
        try:
            if spec.action not in ACTION_RANK:
                raise RuleError(f"unknown action {spec.action!r}")
            if spec.expires_at is not None and spec.expires_at.tzinfo is None:
                # Stored timestamps are UTC; a naive one must not crash the comparison at match time.
                spec = replace(spec, expires_at=spec.expires_at.replace(tzinfo=UTC))
            kind = spec.kind
            if kind == "exact":
                exact.setdefault(_digits(spec.value, cc, np), []).append(spec)
            elif kind == "prefix":
                prefix.setdefault(_digits(spec.value, cc, np), []).append(spec)
            elif kind == "range":
                lo, hi = _digits(spec.value, cc, np), _digits(spec.value_end, cc, np)
                if len(lo) != len(hi) or lo > hi:
                    raise RuleError("a range needs two numbers of equal length, low <= high")
                if len(lo) > MAX_RANGE_DIGITS:
                    raise RuleError(f"range numbers longer than {MAX_RANGE_DIGITS} digits")
                range_rows.setdefault(len(lo), []).append((lo, hi, spec))
            elif kind == "pattern":
                compiled = compile_pattern(spec.value, cc, np)
                patterns.setdefault(compiled.literal_prefix, []).append((compiled, spec))
            else:
                raise RuleError(f"unknown kind {kind!r}")
        except RuleError as exc:
            rejected.append((spec.id, str(exc)))
            continue
        count += 1
    ranges: dict[int, _Ranges] = {}
    for length, rows in range_rows.items():
        rows.sort(key=lambda row: (row[0], row[1]))
        max_highs = array("Q")
        top = 0
        for _, hi, _ in rows:
            top = max(top, int(hi))
            max_highs.append(top)
        lows = array("Q", (int(r[0]) for r in rows))
        highs = array("Q", (int(r[1]) for r in rows))
        ranges[length] = (lows, highs, max_highs, [r[2] for r in rows])
    return CompiledRules(
        country_code=cc,
        national_prefix=np,
        exact=exact,
        prefix=prefix,
        prefix_lengths=tuple(sorted({len(k) for k in prefix}, reverse=True)),
        ranges=ranges,
        patterns=patterns,
        pattern_prefix_lengths=tuple(sorted({len(k) for k in patterns}, reverse=True)),
        rejected=tuple(rejected),
        count=count,
    )
