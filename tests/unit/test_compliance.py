"""dialer.compliance: calling windows across zones and DST, the pre-dial check, abandon budget, ring time."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.phone import normalize
from dialer.compliance import (
    CallingWindows,
    CallingWindowsError,
    CampaignPolicy,
    FrequencyCap,
    LeadFacts,
    NoOpenWindowError,
    SkipCode,
    abandon_budget,
    abandon_windows,
    check_dialable,
    default_windows,
    effective_abandon_target,
    effective_ring_timeout,
    lead_zones,
    min_ring_seconds,
    normalize_regime,
    number_zones,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


NY = ("America/New_York",)
LA = ("America/Los_Angeles",)
SH = ("Asia/Shanghai",)
LONDON = ("Europe/London",)
TOLL_FREE = normalize("+18002662278").timezones  # US toll-free: Guam … Newfoundland
US = default_windows("US")
CN = default_windows("CN")
UK = default_windows("UK")
CN_GOLDEN_WEEK = CallingWindows.from_json({"holidays": [f"2025-10-0{d}" for d in range(1, 8)]}, regime="CN")
US_JULY_4 = CallingWindows.from_json({"holidays": ["2025-07-04"]}, regime="US")
CN_WEEKDAYS = CallingWindows.from_json(
    {"weekly": {d: [["09:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}, regime="CN"
)


def test_toll_free_number_spans_many_zones() -> None:
    assert {"Pacific/Guam", "America/St_Johns", "Pacific/Pago_Pago"} <= set(TOLL_FREE)


# ---- is_open ----


@pytest.mark.parametrize(
    ("windows", "now", "zones", "expected"),
    [
        # US, New York in winter (EST, UTC-5): 08:00–21:00 local (47 CFR 64.1200(c)(1)).
        (US, utc(2025, 1, 15, 12, 59), NY, False),
        (US, utc(2025, 1, 15, 13, 0), NY, True),
        (US, utc(2025, 1, 16, 1, 59), NY, True),
        (US, utc(2025, 1, 16, 2, 0), NY, False),
        # DST: on the Monday after spring-forward 08:00 EDT is 12:00 UTC.
        (US, utc(2025, 3, 10, 11, 59), NY, False),
        (US, utc(2025, 3, 10, 12, 0), NY, True),
        (US, utc(2025, 3, 8, 12, 30), NY, False),  # still EST the Saturday before
        (US, utc(2025, 11, 1, 12, 0), NY, True),  # EDT
        (US, utc(2025, 11, 3, 12, 59), NY, False),  # EST again after fall-back
        (US, utc(2025, 11, 3, 13, 0), NY, True),
        # Los Angeles in summer (PDT, UTC-7).
        (US, utc(2025, 7, 1, 14, 59), LA, False),
        (US, utc(2025, 7, 1, 15, 0), LA, True),
        (US, utc(2025, 7, 2, 3, 59), LA, True),
        (US, utc(2025, 7, 2, 4, 0), LA, False),
        # Phoenix keeps MST all year.
        (US, utc(2025, 7, 1, 14, 59), ("America/Phoenix",), False),
        (US, utc(2025, 7, 1, 15, 0), ("America/Phoenix",), True),
        (US, utc(2025, 1, 15, 15, 0), ("America/Phoenix",), True),
        (US, utc(2025, 1, 15, 18, 0), ("Pacific/Honolulu",), True),
        (US, utc(2025, 1, 15, 17, 59), ("Pacific/Honolulu",), False),
        # Several zones: open only where open in all of them.
        (US, utc(2025, 1, 15, 13, 0), NY + LA, False),
        (US, utc(2025, 1, 15, 16, 0), NY + LA, True),
        (US, utc(2025, 1, 16, 2, 0), NY + LA, False),
        # US toll-free: Guam (UTC+10) to St John's (UTC-3:30) leaves 22:00–00:30 UTC in winter …
        (US, utc(2025, 1, 15, 21, 59), TOLL_FREE, False),
        (US, utc(2025, 1, 15, 22, 0), TOLL_FREE, True),
        (US, utc(2025, 1, 16, 0, 29), TOLL_FREE, True),
        (US, utc(2025, 1, 16, 0, 30), TOLL_FREE, False),
        (US, utc(2025, 1, 15, 17, 0), TOLL_FREE, False),
        # … and 22:00–23:30 UTC in summer (St John's on UTC-2:30).
        (US, utc(2025, 7, 15, 22, 0), TOLL_FREE, True),
        (US, utc(2025, 7, 15, 23, 29), TOLL_FREE, True),
        (US, utc(2025, 7, 15, 23, 30), TOLL_FREE, False),
        # UK, GMT and BST.
        (UK, utc(2025, 1, 15, 7, 59), LONDON, False),
        (UK, utc(2025, 1, 15, 8, 0), LONDON, True),
        (UK, utc(2025, 7, 15, 6, 59), LONDON, False),
        (UK, utc(2025, 7, 15, 7, 0), LONDON, True),
        (UK, utc(2025, 7, 15, 19, 59), LONDON, True),
        (UK, utc(2025, 7, 15, 20, 0), LONDON, False),
        # CN, Beijing time: 09:00–21:00 minus the 12:00–13:30 rest.
        (CN, utc(2025, 1, 15, 0, 59), SH, False),
        (CN, utc(2025, 1, 15, 1, 0), SH, True),
        (CN, utc(2025, 1, 15, 3, 59), SH, True),
        (CN, utc(2025, 1, 15, 4, 0), SH, False),
        (CN, utc(2025, 1, 15, 5, 29), SH, False),
        (CN, utc(2025, 1, 15, 5, 30), SH, True),
        (CN, utc(2025, 1, 15, 12, 59), SH, True),
        (CN, utc(2025, 1, 15, 13, 0), SH, False),
        (CN, utc(2025, 1, 18, 2, 0), SH, True),  # Saturday: open by default
        # Holidays are whole local days.
        (CN_GOLDEN_WEEK, utc(2025, 9, 30, 2, 0), SH, True),
        (CN_GOLDEN_WEEK, utc(2025, 10, 1, 2, 0), SH, False),
        (CN_GOLDEN_WEEK, utc(2025, 10, 7, 12, 0), SH, False),
        (CN_GOLDEN_WEEK, utc(2025, 10, 8, 2, 0), SH, True),
        (US_JULY_4, utc(2025, 7, 4, 15, 0), LA, False),
        (US_JULY_4, utc(2025, 7, 5, 3, 0), LA, False),  # 20:00 on the 4th in LA, the 5th in UTC
        (US_JULY_4, utc(2025, 7, 5, 15, 0), LA, True),
        (US_JULY_4, utc(2025, 7, 3, 15, 0), LA, True),
        # A weekday-only campaign.
        (CN_WEEKDAYS, utc(2025, 1, 17, 2, 0), SH, True),  # Friday
        (CN_WEEKDAYS, utc(2025, 1, 18, 2, 0), SH, False),  # Saturday
        (CN_WEEKDAYS, utc(2025, 1, 19, 2, 0), SH, False),  # Sunday
        (CN_WEEKDAYS, utc(2025, 1, 17, 4, 30), SH, False),  # the CN lunch rest is kept by default
    ],
)
def test_is_open(windows: CallingWindows, now: datetime, zones: tuple[str, ...], expected: bool) -> None:
    assert windows.is_open(now, zones) is expected
    assert (windows.closed_in(now, zones) == ()) is expected


@pytest.mark.parametrize(
    "now",
    [
        datetime(2025, 1, 15, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        datetime(2025, 1, 15, 9, 0, tzinfo=timezone(timedelta(hours=8))),
        datetime(2025, 1, 14, 20, 0, tzinfo=ZoneInfo("America/New_York")),
    ],
)
def test_is_open_accepts_any_aware_datetime(now: datetime) -> None:
    assert CN.is_open(now, SH)
    assert not CN.is_open(now - timedelta(seconds=1), SH)


@pytest.mark.parametrize("zones", [(), ("Not/AZone",), ("",)])
def test_is_open_refuses_unusable_zones(zones: tuple[str, ...]) -> None:
    with pytest.raises((ValueError, KeyError)):
        US.is_open(utc(2025, 1, 15, 17), zones)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        US.is_open(datetime(2025, 1, 15, 17), NY)
    with pytest.raises(ValueError, match="aware"):
        US.next_open(datetime(2025, 1, 15, 17), NY)


# ---- next_open ----


@pytest.mark.parametrize(
    ("windows", "now", "zones", "expected"),
    [
        (CN, utc(2025, 1, 15, 2, 0), SH, utc(2025, 1, 15, 2, 0)),  # already open
        (CN, utc(2025, 1, 15, 4, 10), SH, utc(2025, 1, 15, 5, 30)),  # lunch → 13:30
        (CN, utc(2025, 1, 15, 13, 0), SH, utc(2025, 1, 16, 1, 0)),  # evening → tomorrow 09:00
        (CN_GOLDEN_WEEK, utc(2025, 9, 30, 13, 0), SH, utc(2025, 10, 8, 1, 0)),
        (CN_WEEKDAYS, utc(2025, 1, 17, 13, 0), SH, utc(2025, 1, 20, 1, 0)),  # Friday night → Monday
        (US, utc(2025, 3, 9, 6, 0), NY, utc(2025, 3, 9, 12, 0)),  # DST starts that morning: 08:00 EDT
        (US, utc(2025, 11, 2, 6, 0), NY, utc(2025, 11, 2, 13, 0)),  # DST ends: 08:00 EST
        (US, utc(2025, 1, 15, 13, 0), NY + LA, utc(2025, 1, 15, 16, 0)),
        (US, utc(2025, 1, 15, 12, 0), TOLL_FREE, utc(2025, 1, 15, 22, 0)),
        (US, utc(2025, 7, 15, 23, 45), TOLL_FREE, utc(2025, 7, 16, 22, 0)),
        (US_JULY_4, utc(2025, 7, 4, 12, 0), LA, utc(2025, 7, 5, 15, 0)),
        (UK, utc(2025, 3, 30, 5, 0), LONDON, utc(2025, 3, 30, 7, 0)),  # BST starts: 08:00 BST
        (UK, utc(2025, 10, 26, 5, 0), LONDON, utc(2025, 10, 26, 8, 0)),  # GMT again
    ],
)
def test_next_open(
    windows: CallingWindows, now: datetime, zones: tuple[str, ...], expected: datetime
) -> None:
    found = windows.next_open(now, zones)
    assert found == expected
    assert windows.is_open(found, zones)
    if found > now:
        assert not windows.is_open(found - timedelta(seconds=1), zones)


def test_next_open_raises_when_zones_never_overlap() -> None:
    # The CN rest hours and a number spanning 21 hours of offsets leave no common open minute.
    with pytest.raises(NoOpenWindowError):
        CN.next_open(utc(2025, 1, 15), TOLL_FREE)


def test_next_open_raises_when_every_day_is_closed() -> None:
    closed = CallingWindows.from_json({"weekly": {}}, regime="US")
    with pytest.raises(NoOpenWindowError):
        closed.next_open(utc(2025, 1, 15), NY, horizon_days=30)


# ---- JSON ----


@pytest.mark.parametrize("regime", ["CN", "US", "UK", "cn", "GB"])
def test_empty_json_gives_regime_default(regime: str) -> None:
    assert CallingWindows.from_json({}, regime=regime) == default_windows(regime)
    assert CallingWindows.from_json(None, regime=regime) == default_windows(regime)


@pytest.mark.parametrize(
    ("data", "now", "expected"),
    [
        ({"every_day": [["10:00", "18:00"]]}, utc(2025, 1, 15, 1, 30), False),  # 09:30 Beijing
        ({"every_day": [["10:00", "18:00"]]}, utc(2025, 1, 15, 2, 0), True),
        ({"every_day": [["10:00", "18:00"]]}, utc(2025, 1, 15, 4, 30), False),  # CN rest kept
        ({"every_day": [["10:00", "18:00"]], "breaks": []}, utc(2025, 1, 15, 4, 30), True),
        ({"every_day": [["00:00", "24:00"]], "breaks": []}, utc(2025, 1, 15, 15, 59, 59), True),
        ({"weekly": {"sat": [["09:00", "12:00"]]}}, utc(2025, 1, 18, 2, 0), True),
        ({"weekly": {"sat": [["09:00", "12:00"]]}}, utc(2025, 1, 17, 2, 0), False),
        ({"breaks": [["12:00", "14:00"]]}, utc(2025, 1, 15, 5, 45), False),
        ({"every_day": [["09:00", "11:00"], ["10:00", "12:00"]]}, utc(2025, 1, 15, 3, 30), True),
    ],
)
def test_from_json_settings(data: dict[str, Any], now: datetime, expected: bool) -> None:
    windows = CallingWindows.from_json(data, regime="CN")
    assert windows.is_open(now, SH) is expected
    assert CallingWindows.from_json(windows.to_json(), regime="US") == windows


@pytest.mark.parametrize(
    "data",
    [
        {"holiday": ["2025-10-01"]},  # typo must not silently fall back to defaults
        {"weekly": {}, "every_day": []},
        {"weekly": {"monday": [["09:00", "21:00"]]}},
        {"weekly": [["09:00", "21:00"]]},
        {"every_day": [["21:00", "09:00"]]},
        {"every_day": [["09:00", "09:00"]]},
        {"every_day": [["9am", "5pm"]]},
        {"every_day": [[900, 1700]]},
        {"every_day": [["09:00"]]},
        {"every_day": "09:00-21:00"},
        {"every_day": [["09:00+08:00", "21:00"]]},
        {"breaks": [["13:30", "12:00"]]},
        {"holidays": ["2025-13-01"]},
        {"holidays": "2025-10-01"},
        {"holidays": [20251001]},
    ],
)
def test_from_json_rejects(data: dict[str, Any]) -> None:
    with pytest.raises(CallingWindowsError):
        CallingWindows.from_json(data, regime="CN")


def test_from_json_rejects_non_object() -> None:
    with pytest.raises(CallingWindowsError):
        CallingWindows.from_json(["09:00", "21:00"], regime="CN")  # type: ignore[arg-type]


def test_to_json_shape() -> None:
    assert CN.to_json() == {
        "weekly": {d: [["09:00", "21:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        "breaks": [["12:00", "13:30"]],
        "holidays": [],
    }


@pytest.mark.parametrize("regime", ["", "EU", "USA", "china"])
def test_unknown_regime(regime: str) -> None:
    with pytest.raises(ValueError, match="regime"):
        normalize_regime(regime)


# ---- windows: properties ----

_ZONES = [
    "Asia/Shanghai",
    "America/New_York",
    "America/Los_Angeles",
    "America/Phoenix",
    "America/St_Johns",
    "Pacific/Honolulu",
    "Pacific/Guam",
    "Europe/London",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kathmandu",  # UTC+5:45
    "Pacific/Chatham",
    "UTC",
]
_FIXED_ZONES = ["Asia/Shanghai", "America/Phoenix", "Asia/Kathmandu", "UTC", "Pacific/Honolulu"]


@st.composite
def time_ranges(draw: st.DrawFn, max_size: int = 3) -> list[list[str]]:
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        start = draw(st.integers(0, 24 * 4 - 1)) * 15
        end = draw(st.integers(start // 15 + 1, 24 * 4)) * 15
        out.append(
            [
                f"{start // 60:02d}:{start % 60:02d}",
                "24:00" if end == 1440 else f"{end // 60:02d}:{end % 60:02d}",
            ]
        )
    return out


@st.composite
def window_settings(draw: st.DrawFn) -> CallingWindows:
    weekly = {day: draw(time_ranges()) for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    holidays = draw(st.lists(st.dates(date(2024, 12, 1), date(2026, 3, 1)), max_size=10))
    data = {"weekly": weekly, "breaks": draw(time_ranges(1)), "holidays": [d.isoformat() for d in holidays]}
    return CallingWindows.from_json(data, regime="US")


instants = st.datetimes(datetime(2025, 1, 1), datetime(2025, 12, 31), timezones=st.just(UTC))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window_settings(), instants, st.lists(st.sampled_from(_ZONES), min_size=1, max_size=3))
def test_next_open_is_open_and_not_before_now(
    windows: CallingWindows, now: datetime, zones: list[str]
) -> None:
    try:
        found = windows.next_open(now, zones, horizon_days=60)
    except NoOpenWindowError:
        return
    assert found >= now
    assert windows.is_open(found, zones)
    if windows.is_open(now, zones):
        assert found == now


@settings(max_examples=100, deadline=None)
@given(window_settings(), instants, st.lists(st.sampled_from(_FIXED_ZONES), min_size=1, max_size=2))
def test_next_open_is_the_first_open_minute_without_dst(
    windows: CallingWindows, now: datetime, zones: list[str]
) -> None:
    now = now.replace(second=0, microsecond=0)
    try:
        found = windows.next_open(now, zones, horizon_days=3)
    except NoOpenWindowError:
        found = now + timedelta(days=3)
    probe = now
    while probe < min(found, now + timedelta(days=3)):
        assert not windows.is_open(probe, zones)
        probe += timedelta(minutes=15)


@given(window_settings())
def test_json_round_trip(windows: CallingWindows) -> None:
    assert CallingWindows.from_json(windows.to_json(), regime="CN") == windows


# ---- check_dialable ----

NOW = utc(2025, 1, 15, 17, 0)  # Wednesday, 12:00 in New York, 01:00 Thursday in Beijing
US_CALLER = "+12125550100"
US_POLICY = CampaignPolicy.for_regime("US", caller_id=US_CALLER)
UK_POLICY = CampaignPolicy.for_regime("UK", caller_id="+442079460100")
CN_POLICY = CampaignPolicy.for_regime("CN", caller_id="+861062345600")
LEAD = LeadFacts(phone_e164="+12125551234", timezones=NY)
UK_LEAD = LeadFacts(phone_e164="+442079460000", timezones=LONDON)


def lead(**changes: Any) -> LeadFacts:
    return dataclasses.replace(LEAD, **changes)


def test_clean_lead_is_allowed() -> None:
    verdict = check_dialable(LEAD, US_POLICY, NOW, dnc_hit=False, caller_id=US_CALLER)
    assert verdict.allowed
    assert verdict.reasons == ()
    assert verdict.retry_at is None


@pytest.mark.parametrize(
    ("facts", "kwargs", "codes", "retry_at"),
    [
        (lead(status="done"), {}, ("lead_closed",), None),
        (lead(status="invalid"), {}, ("lead_closed",), None),
        (lead(status="dnc"), {}, ("dnc",), None),
        (lead(status="dialing"), {}, (), None),  # reserved by the hopper: still dialable
        (lead(status="callback"), {}, (), None),
        (LEAD, {"dnc_hit": True}, ("dnc",), None),
        (lead(dnc=True), {}, ("dnc",), None),
        (lead(refused=True), {}, ("refused_consent",), None),
        (lead(refused=True, consent=True), {}, ("refused_consent",), None),  # the later refusal wins
        (LEAD, {"caller_id": ""}, ("no_caller_id",), None),
        (LEAD, {"caller_id": "   "}, ("no_caller_id",), None),
        (LEAD, {"caller_id": "0000000"}, ("no_caller_id",), None),
        (LEAD, {"caller_id": "anonymous"}, ("no_caller_id",), None),
        (LEAD, {"caller_id": "+12125550199"}, ("no_caller_id",), None),  # not the registered number
        (LEAD, {"caller_id": f" {US_CALLER} "}, (), None),
        (lead(attempts=4), {}, (), None),
        (lead(attempts=5), {}, ("max_attempts",), None),
        (lead(attempts=9, status="callback"), {}, (), None),  # an agreed callback is honoured
        (
            lead(last_outcome="busy", last_attempt_at=NOW - timedelta(minutes=10)),
            {},
            ("retry_spacing",),
            NOW + timedelta(minutes=5),
        ),
        (lead(last_outcome="busy", last_attempt_at=NOW - timedelta(minutes=15)), {}, (), None),
        (
            lead(last_outcome="no_answer", last_attempt_at=NOW - timedelta(hours=1)),
            {},
            ("retry_spacing",),
            NOW + timedelta(hours=1),
        ),
        (
            lead(last_outcome="busy", last_attempt_at=(NOW - timedelta(minutes=10)).replace(tzinfo=None)),
            {},
            ("retry_spacing",),
            NOW + timedelta(minutes=5),
        ),  # naive ledger times are UTC, as in core.db
        (
            lead(status="callback", last_outcome="busy", last_attempt_at=NOW - timedelta(minutes=1)),
            {},
            (),
            None,
        ),
        (lead(last_outcome="unknown_code", last_attempt_at=NOW - timedelta(minutes=1)), {}, (), None),
        (
            lead(last_outcome="abandoned", last_attempt_at=NOW - timedelta(hours=2)),
            {},
            ("retry_spacing",),
            NOW + timedelta(hours=22),
        ),  # US: next day, no 72 h block
        (lead(last_outcome="abandoned", last_attempt_at=NOW - timedelta(hours=25)), {}, (), None),
        (lead(contacts=(NOW - timedelta(hours=3),)), {}, (), None),
        (
            lead(contacts=(NOW - timedelta(hours=20), NOW - timedelta(hours=3))),
            {},
            ("frequency_cap",),
            NOW + timedelta(hours=4),
        ),
        (
            lead(contacts=(NOW - timedelta(hours=3), NOW - timedelta(hours=20), NOW - timedelta(hours=1))),
            {},
            ("frequency_cap", "frequency_cap"),
            NOW + timedelta(days=7) - timedelta(hours=20),
        ),  # 3 in 24 h (clears in 21 h) and 3 in 7 days (clears when the oldest is a week old)
        (lead(contacts=(NOW - timedelta(hours=30), NOW - timedelta(hours=26))), {}, (), None),
        (
            lead(contacts=(NOW - timedelta(days=6), NOW - timedelta(days=3), NOW - timedelta(hours=30))),
            {},
            ("frequency_cap",),
            NOW + timedelta(days=1),
        ),
        (lead(contacts=(NOW - timedelta(days=8),) * 5), {}, (), None),
        (
            lead(attempts=7, status="done", dnc=True, refused=True),
            {"caller_id": ""},
            ("lead_closed", "dnc", "refused_consent", "no_caller_id", "max_attempts"),
            None,
        ),
    ],
)
def test_check_dialable_reasons(
    facts: LeadFacts, kwargs: dict[str, Any], codes: tuple[str, ...], retry_at: datetime | None
) -> None:
    args: dict[str, Any] = {"dnc_hit": False, "caller_id": US_CALLER} | kwargs
    verdict = check_dialable(facts, US_POLICY, NOW, **args)
    assert verdict.codes == codes
    assert verdict.allowed is (codes == ())
    if codes:
        assert verdict.reasons[-1].retry_at == retry_at
        assert verdict.retry_at == retry_at  # all these retry times fall inside the NY window
        assert all(reason.detail for reason in verdict.reasons)


@pytest.mark.parametrize(
    ("now", "retry_at"),
    [
        (utc(2025, 1, 15, 3, 0), utc(2025, 1, 15, 13, 0)),  # 22:00 in New York
        (utc(2025, 1, 15, 12, 59), utc(2025, 1, 15, 13, 0)),
        (utc(2025, 1, 16, 2, 0), utc(2025, 1, 16, 13, 0)),
    ],
)
def test_outside_calling_window(now: datetime, retry_at: datetime) -> None:
    verdict = check_dialable(LEAD, US_POLICY, now, dnc_hit=False, caller_id=US_CALLER)
    assert verdict.codes == ("outside_calling_window",)
    assert verdict.reasons[0].retry_at == retry_at
    assert verdict.retry_at == retry_at
    assert "America/New_York" in verdict.reasons[0].detail


def test_retry_time_is_moved_into_the_window() -> None:
    # Busy at 20:50 New York time: the 15-minute spacing ends after 21:00, so the retry is tomorrow 08:00.
    now = utc(2025, 1, 16, 1, 55)
    facts = lead(last_outcome="busy", last_attempt_at=utc(2025, 1, 16, 1, 50))
    verdict = check_dialable(facts, US_POLICY, now, dnc_hit=False, caller_id=US_CALLER)
    assert verdict.codes == ("retry_spacing",)
    assert verdict.reasons[0].retry_at == utc(2025, 1, 16, 2, 5)
    assert verdict.retry_at == utc(2025, 1, 16, 13, 0)


def test_permanent_reason_leaves_no_retry_time() -> None:
    verdict = check_dialable(LEAD, US_POLICY, utc(2025, 1, 15, 3), dnc_hit=True, caller_id=US_CALLER)
    assert verdict.codes == ("dnc", "outside_calling_window")
    assert verdict.reasons[1].retry_at is not None
    assert verdict.retry_at is None


@pytest.mark.parametrize(
    ("facts", "agent_reserved", "codes", "retry_at"),
    [
        (
            dataclasses.replace(UK_LEAD, last_outcome="abandoned", last_attempt_at=NOW - timedelta(hours=24)),
            False,
            ("recent_abandon",),
            NOW + timedelta(hours=48),
        ),
        (
            dataclasses.replace(UK_LEAD, last_outcome="abandoned", last_attempt_at=NOW - timedelta(hours=24)),
            True,  # Ofcom: a re-call with a live agent guaranteed is allowed
            (),
            None,
        ),
        (
            dataclasses.replace(
                UK_LEAD,
                last_outcome="no_answer",
                last_attempt_at=NOW - timedelta(hours=3),
                last_abandon_at=NOW - timedelta(hours=71),
            ),
            False,
            ("recent_abandon",),
            NOW + timedelta(hours=1),
        ),
        (
            dataclasses.replace(UK_LEAD, last_outcome="abandoned", last_attempt_at=NOW - timedelta(hours=72)),
            False,
            (),
            None,
        ),
    ],
)
def test_uk_abandon_block(
    facts: LeadFacts, agent_reserved: bool, codes: tuple[str, ...], retry_at: datetime | None
) -> None:
    verdict = check_dialable(
        facts, UK_POLICY, NOW, dnc_hit=False, caller_id="+442079460100", agent_reserved=agent_reserved
    )
    assert verdict.codes == codes
    if codes:
        assert verdict.reasons[0].retry_at == retry_at


@pytest.mark.parametrize(
    ("policy", "facts", "codes"),
    [
        (CN_POLICY, LeadFacts("+8613812345678", SH), ("no_consent",)),
        (CN_POLICY, LeadFacts("+8613812345678", SH, consent=True), ()),
        (CN_POLICY, LeadFacts("+8613812345678", SH, consent=True, refused=True), ("refused_consent",)),
        (
            CampaignPolicy.for_regime("CN", caller_id="+861062345600", require_consent=False),
            LeadFacts("+8613812345678", SH),
            (),
        ),
        (
            CampaignPolicy.for_regime("US", caller_id=US_CALLER, require_consent=True),
            LEAD,
            ("no_consent",),
        ),
    ],
)
def test_consent(policy: CampaignPolicy, facts: LeadFacts, codes: tuple[str, ...]) -> None:
    now = utc(2025, 1, 15, 2) if policy.regime == "CN" else NOW  # 10:00 in Beijing, noon in New York
    assert check_dialable(facts, policy, now, dnc_hit=False, caller_id=policy.caller_id).codes == codes


def test_unknown_zone_falls_back_to_every_regime_zone() -> None:
    # 17:00 UTC is noon in New York but 07:00 in Honolulu: with no zone known, wait for Hawaii.
    for zones in [(), ("Mars/Olympus",), ("",)]:
        facts = lead(timezones=zones)
        assert lead_zones(facts, US_POLICY) == (
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Phoenix",
            "America/Los_Angeles",
            "America/Anchorage",
            "Pacific/Honolulu",
        )
        verdict = check_dialable(facts, US_POLICY, NOW, dnc_hit=False, caller_id=US_CALLER)
        assert verdict.codes == ("outside_calling_window",)
        assert verdict.retry_at == utc(2025, 1, 15, 18)


def test_policy_fallback_zones() -> None:
    policy = dataclasses.replace(US_POLICY, fallback_timezones=NY)
    assert lead_zones(lead(timezones=()), policy) == NY


def test_toll_free_number_with_a_window_that_never_opens() -> None:
    policy = CampaignPolicy.for_regime("US", caller_id=US_CALLER, calling_windows=CN.to_json())
    verdict = check_dialable(
        lead(phone_e164="+18002662278", timezones=TOLL_FREE), policy, NOW, dnc_hit=False, caller_id=US_CALLER
    )
    assert verdict.codes == ("outside_calling_window",)
    assert verdict.reasons[0].retry_at is None
    assert verdict.retry_at is None
    assert "42 zones" in verdict.reasons[0].detail


def test_naive_now_is_refused_by_the_check() -> None:
    with pytest.raises(ValueError, match="aware"):
        check_dialable(LEAD, US_POLICY, NOW.replace(tzinfo=None), dnc_hit=False, caller_id=US_CALLER)


def test_policy_from_campaign_settings() -> None:
    policy = CampaignPolicy.for_regime(
        "uk",
        caller_id=" +442079460100 ",
        calling_windows={"every_day": [["09:00", "20:00"]]},
        retry_rules={"busy": {"delay_minutes": 30}},
        max_attempts=3,
        frequency_caps=[FrequencyCap(1, timedelta(hours=12))],
    )
    assert policy.regime == "UK"
    assert policy.caller_id == "+442079460100"
    assert policy.min_retry_spacing["busy"] == timedelta(minutes=30)
    assert "abandoned" not in policy.min_retry_spacing  # owned by the recent_abandon check
    assert policy.abandon_recall_block == timedelta(hours=72)
    assert policy.require_consent is False
    assert policy.windows.is_open(utc(2025, 1, 15, 19, 59), LONDON)
    assert not policy.windows.is_open(utc(2025, 1, 15, 20, 0), LONDON)
    assert US_POLICY.abandon_recall_block is None
    assert US_POLICY.min_retry_spacing["abandoned"] == timedelta(days=1)
    assert CN_POLICY.require_consent is True


@pytest.mark.parametrize(
    ("settings", "consent", "caps"),
    [
        ({}, True, ((2, 24), (3, 168))),
        ({"require_consent": False}, False, ((2, 24), (3, 168))),
        ({"frequency_caps": [{"max_contacts": 1, "hours": 12}]}, True, ((1, 12),)),
        ({"frequency_caps": []}, True, ()),
        (
            {"require_consent": True, "every_day": [["10:00", "18:00"]], "frequency_caps": []},
            True,
            (),
        ),
    ],
)
def test_policy_keys_in_calling_windows_json(
    settings: dict[str, Any], consent: bool, caps: tuple[tuple[int, int], ...]
) -> None:
    policy = CampaignPolicy.for_regime("CN", caller_id="+861062345600", calling_windows=settings)
    assert policy.require_consent is consent
    assert tuple((c.max_contacts, c.window / timedelta(hours=1)) for c in policy.frequency_caps) == caps


def test_keyword_arguments_win_over_json_policy_keys() -> None:
    policy = CampaignPolicy.for_regime(
        "CN",
        caller_id="+861062345600",
        calling_windows={"require_consent": True, "frequency_caps": []},
        require_consent=False,
        frequency_caps=[FrequencyCap(5, timedelta(days=1))],
    )
    assert policy.require_consent is False
    assert policy.frequency_caps == (FrequencyCap(5, timedelta(days=1)),)


@pytest.mark.parametrize(
    "settings",
    [
        {"require_consent": "yes"},
        {"frequency_caps": {"max_contacts": 2, "hours": 24}},
        {"frequency_caps": [{"max_contacts": 2}]},
        {"frequency_caps": [{"max_contacts": 0, "hours": 24}]},
        {"frequency_caps": [{"max_contacts": 2, "hours": 0}]},
        {"frequency_caps": [{"max_contacts": True, "hours": 24}]},
        {"frequency_caps": [{"max_contacts": 2, "hours": "24"}]},
        {"frequency_caps": [{"max_contacts": 2, "hours": 24, "agents": "all"}]},
    ],
)
def test_bad_policy_keys_are_refused(settings: dict[str, Any]) -> None:
    with pytest.raises(CallingWindowsError):
        CampaignPolicy.for_regime("CN", caller_id="+861062345600", calling_windows=settings)


@pytest.mark.parametrize(
    ("phone", "stored", "expected"),
    [
        ("+12125551234", "", NY),
        ("+12125551234", "America/Chicago", NY),  # the number wins over a stale stored zone
        ("+8613812345678", "", SH),
        ("+442079460000", "", LONDON),
        ("+18002662278", "America/Adak", TOLL_FREE),  # all 42 zones, not only the first
        ("not a number", "Asia/Shanghai", SH),
        ("", "", ()),
        ("+999", "", ()),
    ],
)
def test_number_zones(phone: str, stored: str, expected: tuple[str, ...]) -> None:
    assert number_zones(phone, stored) == expected


@pytest.mark.parametrize(("count", "hours"), [(0, 24), (1, 0), (1, -5)])
def test_frequency_cap_validation(count: int, hours: int) -> None:
    with pytest.raises(ValueError):
        FrequencyCap(count, timedelta(hours=hours))


def test_skip_codes_are_stable() -> None:
    assert {code.value for code in SkipCode} == {
        "outside_calling_window",
        "dnc",
        "refused_consent",
        "no_consent",
        "max_attempts",
        "retry_spacing",
        "frequency_cap",
        "recent_abandon",
        "no_caller_id",
        "lead_closed",
    }


# ---- check_dialable: properties ----

any_time = st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=st.sampled_from([UTC, None]))
lead_facts = st.builds(
    LeadFacts,
    phone_e164=st.text(max_size=20),
    timezones=st.lists(
        st.sampled_from([*_ZONES, "", "Nope/Nowhere", "../etc"]) | st.text(max_size=12), max_size=3
    ).map(tuple),
    status=st.sampled_from(["new", "dialing", "callback", "done", "dnc", "invalid", "retry", ""]),
    attempts=st.integers(-1, 20),
    last_attempt_at=st.none() | any_time,
    last_outcome=st.sampled_from(["", "busy", "no_answer", "abandoned", "answered", "machine", "x"]),
    contacts=st.lists(any_time, max_size=6).map(tuple),
    last_abandon_at=st.none() | any_time,
    consent=st.booleans(),
    refused=st.booleans(),
    dnc=st.booleans(),
)
policies = st.sampled_from(
    [
        US_POLICY,
        UK_POLICY,
        CN_POLICY,
        CampaignPolicy.for_regime("US", caller_id="", calling_windows=CN.to_json()),
        CampaignPolicy.for_regime("CN", caller_id="+861062345600", calling_windows=CN_WEEKDAYS.to_json()),
    ]
)
aware_now = st.datetimes(datetime(2025, 1, 1), datetime(2025, 12, 31), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lead_facts,
    policies,
    aware_now,
    st.booleans(),
    st.sampled_from([US_CALLER, "+442079460100", "+861062345600", "", "0", "anonymous"])
    | st.text(max_size=8),
    st.booleans(),
)
def test_check_dialable_never_raises_and_retry_at_suffices(
    facts: LeadFacts, policy: CampaignPolicy, now: datetime, dnc_hit: bool, caller_id: str, reserved: bool
) -> None:
    verdict = check_dialable(
        facts, policy, now, dnc_hit=dnc_hit, caller_id=caller_id, agent_reserved=reserved
    )
    assert verdict.allowed is (verdict.reasons == ())
    zones = lead_zones(facts, policy)
    if verdict.allowed:
        assert policy.windows.is_open(now, zones)
    for reason in verdict.reasons:
        assert reason.retry_at is None or reason.retry_at >= now
    if verdict.retry_at is not None:
        # Waiting until retry_at clears every reason: the hopper can trust it as next_call_at.
        assert verdict.retry_at >= now
        later = check_dialable(
            facts, policy, verdict.retry_at, dnc_hit=dnc_hit, caller_id=caller_id, agent_reserved=reserved
        )
        assert later.allowed, later.reasons


# ---- abandon budget and ring time ----


@pytest.mark.parametrize(
    ("answered", "abandoned", "target", "rate", "remaining", "exceeded"),
    [
        (0, 0, 0.03, 0.0, 0, False),
        (100, 0, 0.03, 0.0, 3, False),
        (100, 3, 0.03, 0.03, 0, False),  # exactly 3 % is within the rule
        (100, 4, 0.03, 0.04, 0, True),
        (1000, 10, 0.03, 0.01, 20, False),
        (50, 1, 0.03, 0.02, 0, False),
        (50, 2, 0.03, 0.04, 0, True),
        (33, 1, 0.03, 1 / 33, 0, True),  # 3.03 %
        (34, 1, 0.03, 1 / 34, 0, False),  # 2.94 %
        (200, 1, 0.01, 0.005, 1, False),
        (10, 0, 0.0, 0.0, 0, False),
        (10, 1, 0.0, 0.1, 0, True),
    ],
)
def test_abandon_budget(
    answered: int, abandoned: int, target: float, rate: float, remaining: int, exceeded: bool
) -> None:
    budget = abandon_budget(answered, abandoned, target)
    assert budget.rate == pytest.approx(rate)
    assert budget.remaining_abandons == remaining
    assert budget.exceeded is exceeded


@pytest.mark.parametrize(
    ("answered", "abandoned", "target"), [(-1, 0, 0.03), (5, 6, 0.03), (5, -1, 0.03), (5, 0, 1.5)]
)
def test_abandon_budget_rejects(answered: int, abandoned: int, target: float) -> None:
    with pytest.raises(ValueError):
        abandon_budget(answered, abandoned, target)


@given(st.integers(0, 100_000), st.data())
def test_abandon_budget_matches_exact_arithmetic(answered: int, data: st.DataObject) -> None:
    abandoned = data.draw(st.integers(0, answered))
    budget = abandon_budget(answered, abandoned)
    assert budget.exceeded is (abandoned * 100 > answered * 3)
    assert (abandoned + budget.remaining_abandons) * 100 <= max(answered * 3, abandoned * 100)
    if not budget.exceeded:
        assert (abandoned + budget.remaining_abandons + 1) * 100 > answered * 3


@pytest.mark.parametrize("regime", ["CN", "US", "UK", "gb"])
def test_ring_time(regime: str) -> None:
    assert min_ring_seconds(regime) >= 15
    assert effective_ring_timeout(regime, 10) == 15
    assert effective_ring_timeout(regime, 25) == 25


@pytest.mark.parametrize(("configured", "effective"), [(0.05, 0.03), (0.03, 0.03), (0.02, 0.02), (-1.0, 0.0)])
def test_abandon_target_capped(configured: float, effective: float) -> None:
    assert effective_abandon_target("US", configured) == effective


@pytest.mark.parametrize(
    ("regime", "windows"),
    [
        ("US", (timedelta(days=30),)),
        ("CN", (timedelta(days=30),)),
        ("UK", (timedelta(days=30), timedelta(hours=24))),
    ],
)
def test_abandon_windows(regime: str, windows: tuple[timedelta, ...]) -> None:
    assert abandon_windows(regime) == windows


def test_ring_time_unknown_regime() -> None:
    with pytest.raises(ValueError):
        min_ring_seconds("XX")


def test_holiday_default_is_empty() -> None:
    # Statutory holidays move every year (State Council notice): campaigns configure them.
    assert CN.holidays == frozenset()
    assert CN.breaks == ((time(12), time(13, 30)),)
