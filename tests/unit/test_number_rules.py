"""ivr.screening.rules: canonical forms, every rule kind, precedence, scope, expiry, bad rules, scale."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from ivr.screening.rules import (
    CompiledRules,
    RuleError,
    RuleSpec,
    canonical_digits,
    compile_pattern,
    compile_rules,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _match(rules: CompiledRules, number: str, *scopes: str, now: datetime = NOW) -> int | None:
    found = rules.match(rules.canonical(number), scope_keys=scopes, now=now)
    return None if found is None else found.rule_id


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("13812345678", "8613812345678"),
        ("+8613812345678", "8613812345678"),
        ("008613812345678", "8613812345678"),
        ("01062345678", "861062345678"),
        ("+861062345678", "861062345678"),
        ("0755", "86755"),
        ("95533", "8695533"),
        ("00196", "196"),
        ("+1415", "1415"),
        ("17900", "8617900"),
    ],
)
def test_canonical_digits(written: str, canonical: str) -> None:
    assert canonical_digits(written, "86", "0") == canonical


@pytest.mark.parametrize(
    ("pattern", "number", "matches"),
    [
        ("_1XXXXXXXXXX", "13812345678", True),
        ("_1XXXXXXXXXX", "1381234567", False),
        ("1XXXXXXXXXX", "13812345678", True),  # the admin API stores patterns without "_"
        ("_0NXXXXXXXXX", "02112345678", True),
        ("_0NXXXXXXXXX", "01112345678", False),  # N is 2-9
        ("_0ZXXXXXXXXX", "01112345678", True),  # Z is 1-9
        ("_0ZXXXXXXXXX", "00112345678", False),
        ("_1[35-7]XXXXXXXXX", "15012345678", True),
        ("_1[35-7]XXXXXXXXX", "14012345678", False),
        ("_1[35-7]XXXXXXXXX", "17012345678", True),
        ("_138.", "13812345678", True),  # "." is one or more
        ("_138.", "138", False),
        ("_138!", "138", True),  # "!" is zero or more
        ("_138-XXXX-XXXX", "13812345678", True),  # dashes are for readability
        ("_138xxxxxxxx", "13812345678", True),
        ("+1415NXXXXXX", "+14155552671", True),
        ("+1415NXXXXXX", "13812345678", False),
        ("_00196.", "00196123456", True),
        ("_X.", "+14155552671", False),  # national patterns only see national numbers
        ("_X.", "13812345678", True),
    ],
)
def test_patterns(pattern: str, number: str, matches: bool) -> None:
    rules = compile_rules([RuleSpec(1, "pattern", pattern, "block")])
    assert rules.rejected == ()
    assert (_match(rules, number) == 1) is matches


@pytest.mark.parametrize("bad", ["1A3", "_1[]", "_1[5", "_1[a-z]", "", "1 3 8", "_" + "X" * 41])
def test_bad_patterns_are_rejected(bad: str) -> None:
    with pytest.raises(RuleError):
        compile_pattern(bad, "86")
    rules = compile_rules([RuleSpec(7, "pattern", bad, "block")])
    assert rules.count == 0 and rules.rejected[0][0] == 7


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (RuleSpec(1, "exact", "138-1234", "block"), "not a number"),
        (RuleSpec(2, "range", "1380000", "block", value_end="13899999"), "equal length"),
        (RuleSpec(3, "range", "1389", "block", value_end="1380"), "low <= high"),
        (RuleSpec(4, "prefix", "138", "drop"), "unknown action"),  # type: ignore[arg-type]
        (RuleSpec(5, "regex", "138", "block"), "unknown kind"),  # type: ignore[arg-type]
        (RuleSpec(6, "range", "1" * 20, "block", value_end="1" * 20), "longer than 19 digits"),
    ],
)
def test_bad_rules_are_skipped_not_fatal(spec: RuleSpec, why: str) -> None:
    rules = compile_rules([spec, RuleSpec(99, "exact", "13812345678", "block")])
    assert rules.count == 1
    assert rules.rejected[0][0] == spec.id and why in rules.rejected[0][1]
    assert _match(rules, "13812345678") == 99


def test_every_kind_matches() -> None:
    rules = compile_rules(
        [
            RuleSpec(1, "exact", "13812345678", "block"),
            RuleSpec(2, "prefix", "0755", "block"),
            RuleSpec(3, "range", "13900000000", "challenge", value_end="13900009999"),
            RuleSpec(4, "pattern", "_15X0000XXXX", "allow"),
        ]
    )
    assert _match(rules, "13812345678") == 1
    assert _match(rules, "+8613812345678") == 1
    assert _match(rules, "13812345679") is None
    assert _match(rules, "075512345678") == 2
    assert _match(rules, "+8675512345678") == 2
    assert _match(rules, "13900000000") == 3
    assert _match(rules, "13900009999") == 3
    assert _match(rules, "13900010000") is None
    assert _match(rules, "13899999999") is None
    assert _match(rules, "15100001234") == 4
    assert _match(rules, "15100011234") is None


# Precedence: exact > range > longest prefix > pattern; then scoped > global; then block > challenge >
# allow; then the lowest id.
PRECEDENCE = [
    RuleSpec(10, "pattern", "_138XXXXXXXX", "allow"),
    RuleSpec(11, "pattern", "_1381XXXXXXX", "allow"),  # more literal digits: more precise
    RuleSpec(20, "prefix", "138", "block"),
    RuleSpec(21, "prefix", "13812", "allow"),
    RuleSpec(30, "range", "13812000000", "challenge", value_end="13812999999"),
    RuleSpec(31, "range", "13812340000", "allow", value_end="13812349999"),  # narrower
    RuleSpec(40, "exact", "13812345678", "allow"),
    RuleSpec(41, "exact", "13812345678", "block", scope="trunk:bank"),
]


@pytest.mark.parametrize(
    ("number", "scopes", "winner", "why"),
    [
        ("13812345678", (), 40, "exact beats everything else"),
        ("13812345678", ("trunk:bank",), 41, "scoped beats global at equal specificity"),
        ("13812345670", (), 31, "range beats prefix; the narrowest range wins"),
        ("13812000000", (), 30, "the wider range when the narrow one does not contain it"),
        ("138120", (), 21, "the longest prefix wins"),
        ("13899999999", (), 20, "a shorter prefix still beats any pattern"),
        ("1381", (), 20, "prefix"),
    ],
)
def test_precedence(number: str, scopes: tuple[str, ...], winner: int, why: str) -> None:
    assert _match(compile_rules(PRECEDENCE), number, *scopes) == winner, why


def test_pattern_precision() -> None:
    rules = compile_rules(PRECEDENCE[:2])
    assert _match(rules, "13812345678") == 11
    assert _match(rules, "13822345678") == 10


@pytest.mark.parametrize(
    ("actions", "winner"),
    [
        (("allow", "block"), 2),
        (("block", "allow"), 1),
        (("allow", "challenge"), 2),
        (("challenge", "block"), 2),
        (("block", "block"), 1),  # full tie: the oldest (lowest id)
    ],
)
def test_equal_specificity_strictest_wins(actions: tuple[str, str], winner: int) -> None:
    specs = [RuleSpec(i + 1, "prefix", "0755", a) for i, a in enumerate(actions)]  # type: ignore[arg-type]
    rules = compile_rules(specs)
    assert _match(rules, "075512345678") == winner


def test_scope_filtering() -> None:
    rules = compile_rules(
        [
            RuleSpec(1, "prefix", "0755", "block", scope="trunk:a"),
            RuleSpec(2, "prefix", "0755", "block", scope="campaign:7"),
            RuleSpec(3, "prefix", "075", "challenge"),
        ]
    )
    assert _match(rules, "075512345678") == 3
    assert _match(rules, "075512345678", "trunk:b") == 3
    assert _match(rules, "075512345678", "trunk:a") == 1
    assert _match(rules, "075512345678", "campaign:7") == 2


def test_expired_rules_never_match() -> None:
    rules = compile_rules(
        [
            RuleSpec(1, "exact", "13812345678", "block", expires_at=NOW),
            RuleSpec(2, "exact", "13812345678", "challenge", expires_at=NOW + timedelta(seconds=1)),
            RuleSpec(3, "prefix", "138", "allow", expires_at=(NOW - timedelta(days=1)).replace(tzinfo=None)),
            RuleSpec(4, "range", "13900000000", "block", value_end="13999999999", expires_at=NOW),
            RuleSpec(5, "pattern", "_137XXXXXXXX", "block", expires_at=NOW),
        ]
    )
    assert _match(rules, "13812345678", now=NOW - timedelta(seconds=1)) == 1
    assert _match(rules, "13812345678") == 2  # expiry is exclusive: expires_at == now is expired
    assert _match(rules, "13812345678", now=NOW + timedelta(seconds=2)) is None
    assert _match(rules, "13812345670", now=NOW - timedelta(days=2)) == 3  # naive expiry read as UTC
    assert _match(rules, "13812345670") is None
    assert _match(rules, "13912345678") is None
    assert _match(rules, "13712345678") is None
    assert _match(rules, "13712345678", now=(NOW - timedelta(seconds=1)).replace(tzinfo=None)) == 5


def test_overlapping_ranges_are_all_found() -> None:
    rules = compile_rules(
        [
            RuleSpec(1, "range", "13800000000", "block", value_end="13899999999"),
            RuleSpec(2, "range", "13810000000", "challenge", value_end="13810000099"),
            RuleSpec(3, "range", "13805000000", "allow", value_end="13806000000"),
        ]
    )
    assert _match(rules, "13810000050") == 2
    assert _match(rules, "13810000100") == 1
    assert _match(rules, "13805500000") == 3
    assert _match(rules, "13899999999") == 1


def test_from_row_reads_an_orm_shaped_object() -> None:
    class Row:
        id = 5
        kind = "prefix"
        value = "0755"
        value_end = ""
        action = "block"
        scope = "global"
        expires_at = None
        reason = "spam gateway"
        source = "import"

    spec = RuleSpec.from_row(Row())
    assert spec == RuleSpec(5, "prefix", "0755", "block", reason="spam gateway", source="import")


def test_a_million_rules_load_fast_and_match_in_microseconds() -> None:
    specs: list[RuleSpec] = []
    for i in range(1_000_000):
        kind = i % 10
        if kind < 7:
            specs.append(RuleSpec(i, "exact", f"1{i % 9 + 3}{i:09d}", "block"))
        elif kind < 9:
            specs.append(RuleSpec(i, "prefix", f"0{i:07d}", "block"))
        else:
            specs.append(RuleSpec(i, "range", f"17{i:07d}00", "challenge", value_end=f"17{i:07d}99"))
    started = time.perf_counter()
    rules = compile_rules(specs)
    took = time.perf_counter() - started
    assert rules.count == 1_000_000
    assert took < 10, f"compile took {took:.1f} s"
    keys = [rules.canonical(f"13{n:09d}") for n in range(0, 20_000_000, 1000)]
    started = time.perf_counter()
    for key in keys:
        rules.match(key, scope_keys=("trunk:x",), now=NOW)
    per_call_us = (time.perf_counter() - started) / len(keys) * 1e6
    assert per_call_us < 20, f"{per_call_us:.1f} µs per match"
