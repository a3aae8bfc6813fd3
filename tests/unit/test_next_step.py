"""dialer.compliance.next_step: lead status and next call time after each outcome and disposition."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.phone import normalize
from dialer.compliance import (
    CampaignPolicy,
    LeadFacts,
    NextStep,
    RetryRule,
    RetryRulesError,
    UnknownCodeError,
    check_dialable,
    default_retry_rules,
    default_windows,
    next_step,
    retry_rules_from_json,
    retry_rules_to_json,
)
from dialer.compliance.next_step import (
    CALLBACK_DISPOSITIONS,
    DISPOSITIONS,
    LEAD_STATUSES,
    OUTCOMES,
    TERMINAL_DISPOSITIONS,
)

NOW = datetime(2025, 1, 15, 17, 0, tzinfo=UTC)  # noon in New York
NY = ("America/New_York",)
US_RULES = default_retry_rules("US")
UK_RULES = default_retry_rules("UK")
CN_RULES = default_retry_rules("CN")
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def step(code: str, *, attempts: int = 1, rules: dict[str, RetryRule] = US_RULES, **kwargs: Any) -> NextStep:
    return next_step(code, now=NOW, rules=rules, attempts=attempts, max_attempts=5, **kwargs)


@pytest.mark.parametrize(
    ("code", "status", "delay", "reason", "contact"),
    [
        # Attempt outcomes.
        ("answered", "new", DAY, "answered", True),  # no disposition yet: don't re-dial today
        ("busy", "new", 15 * MIN, "busy", False),
        ("no_answer", "new", 2 * HOUR, "no_answer", False),
        ("congestion", "new", 5 * MIN, "congestion", False),
        ("rejected", "new", DAY, "rejected", False),
        ("unreachable", "new", DAY, "unreachable", False),
        ("abandoned", "new", DAY, "abandoned", True),
        ("machine", "new", 4 * HOUR, "machine", False),
        ("lost_on_reconnect", "new", 10 * MIN, "lost_on_reconnect", False),  # never a customer contact
        # Agent dispositions.
        ("gatekeeper", "new", 4 * HOUR, "gatekeeper", True),
        ("no_contact", "new", 2 * HOUR, "no_contact", False),
        ("callback", "callback", DAY, "callback", True),
        ("decision_maker", "callback", 2 * DAY, "decision_maker", True),
        ("interested", "callback", DAY, "interested", True),
        ("appointment", "done", None, "appointment", True),
        ("not_interested", "done", None, "not_interested", True),
        ("wrong_number", "invalid", None, "wrong_number", True),
        ("do_not_call", "dnc", None, "do_not_call", True),
    ],
)
def test_each_outcome_and_disposition(
    code: str, status: str, delay: timedelta | None, reason: str, contact: bool
) -> None:
    result = step(code)
    assert result.lead_status == status
    assert result.next_call_at == (None if delay is None else NOW + delay)
    assert result.reason == reason
    assert result.customer_contact is contact
    assert result.propagate_dnc is (code == "do_not_call")


def test_every_code_is_covered() -> None:
    assert set(US_RULES) | set(TERMINAL_DISPOSITIONS) >= OUTCOMES | DISPOSITIONS


def test_do_not_call_propagates_in_every_regime() -> None:
    for rules in (US_RULES, UK_RULES, CN_RULES):
        result = step("do_not_call", rules=rules, attempts=99)
        assert result == NextStep("dnc", None, "do_not_call", propagate_dnc=True, customer_contact=True)


@pytest.mark.parametrize(
    ("rules", "delay"),
    [(US_RULES, DAY), (CN_RULES, DAY), (UK_RULES, 72 * HOUR)],  # Ofcom: no re-call within 72 h
)
def test_abandoned_retry_by_regime(rules: dict[str, RetryRule], delay: timedelta) -> None:
    assert step("abandoned", rules=rules).next_call_at == NOW + delay


@pytest.mark.parametrize(
    ("code", "attempts", "code_count", "status", "reason"),
    [
        ("busy", 4, 1, "new", "busy"),
        ("busy", 5, 1, "done", "max_attempts"),
        ("busy", 5, 5, "done", "busy_max_tries"),  # the per-code limit is reported first
        ("busy", 5, 2, "done", "max_attempts"),
        ("busy", 3, 4, "new", "busy"),
        ("rejected", 2, 2, "done", "rejected_max_tries"),
        ("rejected", 2, None, "done", "rejected_max_tries"),  # count defaults to attempts
        ("rejected", 1, None, "new", "rejected"),
        ("no_answer", 6, 1, "done", "max_attempts"),
        ("lost_on_reconnect", 3, 3, "done", "lost_on_reconnect_max_tries"),
        ("lost_on_reconnect", 3, 2, "new", "lost_on_reconnect"),
        ("congestion", 4, 9, "new", "congestion"),
        ("congestion", 4, 10, "done", "congestion_max_tries"),
        ("machine", 3, 3, "done", "machine_max_tries"),
        ("unreachable", 3, 3, "done", "unreachable_max_tries"),
        ("gatekeeper", 5, 1, "done", "max_attempts"),
        ("answered", 5, 1, "done", "max_attempts"),
        # An agreed callback is kept however many attempts it took to reach the callee.
        ("callback", 9, 1, "callback", "callback"),
        ("decision_maker", 9, None, "callback", "decision_maker"),
        ("interested", 12, None, "callback", "interested"),
        ("appointment", 9, None, "done", "appointment"),
        ("do_not_call", 1, None, "dnc", "do_not_call"),
    ],
)
def test_limits(code: str, attempts: int, code_count: int | None, status: str, reason: str) -> None:
    result = step(code, attempts=attempts, code_count=code_count)
    assert (result.lead_status, result.reason) == (status, reason)
    assert (result.next_call_at is None) is (status in ("done", "dnc", "invalid"))


@pytest.mark.parametrize(
    ("callback_at", "expected"),
    [
        (NOW + 3 * HOUR, NOW + 3 * HOUR),
        (NOW - HOUR, NOW),  # a time already past means "as soon as possible"
        ((NOW + 2 * HOUR).replace(tzinfo=None), NOW + 2 * HOUR),  # naive: UTC, as in core.db
        (
            datetime(2025, 1, 16, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
            datetime(2025, 1, 16, 1, 30, tzinfo=UTC),
        ),
    ],
)
def test_callback_time(callback_at: datetime, expected: datetime) -> None:
    result = step("callback", callback_at=callback_at)
    assert result.lead_status == "callback"
    assert result.next_call_at == expected


@pytest.mark.parametrize(
    ("code", "now", "kwargs", "expected"),
    [
        # Busy at 20:50 in New York: 21:05 is outside the window, so 08:00 the next morning.
        ("busy", datetime(2025, 1, 16, 1, 50, tzinfo=UTC), {}, datetime(2025, 1, 16, 13, 0, tzinfo=UTC)),
        ("busy", NOW, {}, NOW + 15 * MIN),
        ("no_answer", datetime(2025, 1, 16, 0, 30, tzinfo=UTC), {}, datetime(2025, 1, 16, 13, 0, tzinfo=UTC)),
        (
            "callback",
            NOW,
            {"callback_at": datetime(2025, 1, 16, 4, 0, tzinfo=UTC)},  # 23:00 in New York
            datetime(2025, 1, 16, 13, 0, tzinfo=UTC),
        ),
    ],
)
def test_next_call_moved_into_calling_window(
    code: str, now: datetime, kwargs: dict[str, Any], expected: datetime
) -> None:
    result = next_step(
        code,
        now=now,
        rules=US_RULES,
        attempts=1,
        max_attempts=5,
        windows=default_windows("US"),
        timezones=NY,
        **kwargs,
    )
    assert result.next_call_at == expected


@pytest.mark.parametrize("timezones", [(), ("Not/AZone",)])
def test_window_with_unusable_zone_keeps_plain_time(timezones: tuple[str, ...]) -> None:
    result = step("busy", windows=default_windows("US"), timezones=timezones)
    assert result.next_call_at == NOW + 15 * MIN


def test_window_that_never_opens_keeps_plain_time() -> None:
    zones = normalize("+18002662278").timezones
    result = step("busy", windows=default_windows("CN"), timezones=zones)
    assert result.next_call_at == NOW + 15 * MIN


@pytest.mark.parametrize("code", ["", "BUSY", "sale", "hung up"])
def test_unknown_code(code: str) -> None:
    with pytest.raises(UnknownCodeError):
        step(code)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_step("busy", now=NOW.replace(tzinfo=None), rules=US_RULES, attempts=1, max_attempts=5)


# ---- campaign rules JSON ----

CUSTOM = retry_rules_from_json(
    {
        "busy": {"delay_minutes": 30},
        "no_answer": {"max": None},
        "brochure_sent": {"status": "callback", "delay_minutes": 4320},
        "competitor_customer": {"status": "done"},
        "hostile": {"status": "dnc"},
        "voicemail_left": {"delay_minutes": 60, "max": 2, "contact": False},
    },
    regime="US",
)


@pytest.mark.parametrize(
    ("code", "attempts", "code_count", "expected"),
    [
        ("busy", 1, 1, NextStep("new", NOW + 30 * MIN, "busy")),
        ("busy", 1, 5, NextStep("done", None, "busy_max_tries")),  # max kept from the default
        ("no_answer", 4, 40, NextStep("new", NOW + 2 * HOUR, "no_answer")),  # no per-code limit
        ("brochure_sent", 9, 1, NextStep("callback", NOW + 3 * DAY, "brochure_sent", customer_contact=True)),
        ("competitor_customer", 1, 1, NextStep("done", None, "competitor_customer", customer_contact=True)),
        ("hostile", 1, 1, NextStep("dnc", None, "hostile", propagate_dnc=True, customer_contact=True)),
        ("voicemail_left", 1, 1, NextStep("new", NOW + HOUR, "voicemail_left")),
        ("voicemail_left", 2, 2, NextStep("done", None, "voicemail_left_max_tries")),
        ("voicemail_left", 5, 1, NextStep("done", None, "max_attempts")),
    ],
)
def test_campaign_rules(code: str, attempts: int, code_count: int, expected: NextStep) -> None:
    assert step(code, rules=CUSTOM, attempts=attempts, code_count=code_count) == expected


@pytest.mark.parametrize(
    ("data", "code", "delay", "max_tries"),
    [
        (None, "busy", 15 * MIN, 5),
        ({}, "busy", 15 * MIN, 5),
        ({"busy": {}}, "busy", 15 * MIN, 5),
        ({"busy": {"max": 2}}, "busy", 15 * MIN, 2),
        ({"busy": {"delay_minutes": 0}}, "busy", timedelta(0), 5),
        ({"congestion": {"max": None}}, "congestion", 5 * MIN, None),
        ({"callback": {"delay_minutes": 60}}, "callback", HOUR, None),
    ],
)
def test_rules_merge_over_defaults(
    data: dict[str, Any] | None, code: str, delay: timedelta, max_tries: int | None
) -> None:
    rule = retry_rules_from_json(data, regime="CN")[code]
    assert (rule.delay, rule.max_tries) == (delay, max_tries)


@pytest.mark.parametrize(("minutes", "delay"), [(60, 72 * HOUR), (72 * 60, 72 * HOUR), (96 * 60, 96 * HOUR)])
def test_uk_abandon_delay_cannot_be_shortened(minutes: int, delay: timedelta) -> None:
    rules = retry_rules_from_json({"abandoned": {"delay_minutes": minutes}}, regime="UK")
    assert rules["abandoned"].delay == delay


@pytest.mark.parametrize(
    "data",
    [
        {"do_not_call": {"delay_minutes": 60}},  # a refusal can never be turned into a retry
        {"appointment": {"status": "new"}},
        {"wrong_number": {}},
        {"not_interested": {"delay_minutes": 43200}},
        {"busy": {"delay_minutes": -1}},
        {"busy": {"delay_minutes": "15"}},
        {"busy": {"delay_minutes": 1.5}},
        {"busy": {"delay_minutes": True}},
        {"busy": {"max": 0}},
        {"busy": {"delay": 15}},
        {"busy": {"status": "done"}},  # built-in codes keep their meaning
        {"answered": {"contact": False}},
        {"busy": 15},
        {"brochure_sent": {}},
        {"brochure_sent": {"max": 3}},
        {"brochure_sent": {"status": "archived"}},
        {"brochure_sent": {"status": "done", "contact": "yes"}},
    ],
)
def test_rules_json_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(RetryRulesError):
        retry_rules_from_json(data, regime="US")


def test_rules_json_must_be_an_object() -> None:
    with pytest.raises(RetryRulesError):
        retry_rules_from_json([["busy", 15]], regime="US")  # type: ignore[arg-type]


@pytest.mark.parametrize("rules", [US_RULES, UK_RULES, CN_RULES, CUSTOM])
def test_rules_json_round_trip(rules: dict[str, RetryRule]) -> None:
    assert (
        retry_rules_from_json(retry_rules_to_json(rules), regime="UK" if rules is UK_RULES else "US") == rules
    )


def test_rules_json_shape() -> None:
    as_json = retry_rules_to_json(CUSTOM)
    assert as_json["busy"] == {"delay_minutes": 30, "max": 5}
    assert as_json["brochure_sent"] == {
        "delay_minutes": 4320,
        "max": None,
        "status": "callback",
        "contact": True,
    }


def test_unknown_regime() -> None:
    with pytest.raises(ValueError, match="regime"):
        default_retry_rules("FR")


# ---- agreement with the pre-dial check ----

RETRY_CODES = sorted(code for code in US_RULES if code not in CALLBACK_DISPOSITIONS)


@pytest.mark.parametrize("regime", ["US", "UK", "CN"])
@pytest.mark.parametrize("code", RETRY_CODES)
def test_scheduled_retry_passes_the_spacing_check(regime: str, code: str) -> None:
    policy = CampaignPolicy.for_regime(regime, caller_id="+12125550100", require_consent=False)
    rules = default_retry_rules(regime)
    result = next_step(code, now=NOW, rules=rules, attempts=1, max_attempts=5)
    assert result.next_call_at is not None
    facts = LeadFacts(
        "+12125551234",
        NY,
        status=result.lead_status,
        attempts=1,
        last_attempt_at=NOW,
        last_outcome=code,
        contacts=(NOW,) if result.customer_contact else (),
    )
    verdict = check_dialable(facts, policy, result.next_call_at, dnc_hit=False, caller_id="+12125550100")
    assert not {"retry_spacing", "recent_abandon"} & set(verdict.codes)
    early = check_dialable(facts, policy, result.next_call_at - MIN, dnc_hit=False, caller_id="+12125550100")
    if code in policy.min_retry_spacing and rules[code].delay > MIN:
        assert {"retry_spacing", "recent_abandon"} & set(early.codes)


# ---- properties ----

known_codes = st.sampled_from(
    sorted(OUTCOMES | DISPOSITIONS | {"brochure_sent", "hostile", "voicemail_left"})
)


@settings(max_examples=300, deadline=None)
@given(
    known_codes,
    st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
    st.integers(0, 30),
    st.integers(1, 30),
    st.none() | st.integers(0, 30),
    st.none()
    | st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=st.sampled_from([UTC, None])),
    st.booleans(),
)
def test_next_step_is_total_and_never_schedules_in_the_past(
    code: str,
    now: datetime,
    attempts: int,
    max_attempts: int,
    code_count: int | None,
    callback_at: datetime | None,
    use_windows: bool,
) -> None:
    result = next_step(
        code,
        now=now,
        rules=CUSTOM,
        attempts=attempts,
        max_attempts=max_attempts,
        code_count=code_count,
        callback_at=callback_at,
        windows=default_windows("US") if use_windows else None,
        timezones=NY,
    )
    assert result.lead_status in LEAD_STATUSES
    assert (result.next_call_at is None) is (result.lead_status in ("done", "dnc", "invalid"))
    if result.next_call_at is not None:
        assert result.next_call_at >= now
        if use_windows:
            assert default_windows("US").is_open(result.next_call_at, NY)
    assert result.propagate_dnc is (result.lead_status == "dnc")
    if code == "lost_on_reconnect":
        assert not result.customer_contact


def test_rules_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        US_RULES["busy"].delay = timedelta(0)  # type: ignore[misc]
