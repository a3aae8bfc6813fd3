"""Calling windows: the hours a lead may be called, judged in the lead's own local time.

Regime defaults and the rules behind them:

- US: 08:00–21:00 every day. 47 CFR 64.1200(c)(1) forbids telephone solicitations before 8 a.m. or
  after 9 p.m. local time *at the called party's location*, so the check runs in the callee's zone.
- UK: 08:00–21:00 every day. UK law sets no calling hours; Ofcom's persistent-misuse policy leaves it to
  industry practice, and 08:00–21:00 is the common code of practice, so we follow it.
- CN: 09:00–21:00 every day with the 12:00–13:30 lunch rest excluded (DESIGN §4). No national statute
  we know of fixes the hours (the MIIT rules are about consent, refusal and caller numbers), so this is
  practice: the midday rest is widely observed in China and calls into it draw complaints. Statutory
  holidays move every year (State Council notice), so they are configured per campaign.

A number may map to several zones (US toll-free spans Guam to Newfoundland). We do not know where the
callee is, so a window counts as open only when it is open in *every* zone the number may be in.

Errors: `CallingWindowsError` (bad JSON, a ValueError) and `NoOpenWindowError` (no open instant within
the search horizon, a LookupError: the windows never overlap across the number's zones).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from core.phone import InvalidPhoneNumber, normalize

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
REGIMES = ("CN", "US", "UK")
_DAY_SECONDS = 86_400
_JSON_KEYS = frozenset({"weekly", "every_day", "breaks", "holidays"})

TimeRange = tuple[time, time]
_Segment = tuple[int, int]  # [start, end) in seconds since local midnight
_Interval = tuple[datetime, datetime]  # [start, end) in UTC


class CallingWindowsError(ValueError):
    """Calling-window settings that cannot be used (bad JSON, empty or reversed ranges)."""


class NoOpenWindowError(LookupError):
    """The windows are never open in all of the number's zones at once within the search horizon."""


def normalize_regime(regime: str) -> str:
    """'cn' → 'CN', 'GB' → 'UK'; anything else we have no profile for is refused."""
    code = (regime or "").strip().upper()
    code = "UK" if code == "GB" else code
    if code not in REGIMES:
        raise ValueError(f"unknown compliance regime {regime!r}; expected one of {', '.join(REGIMES)}")
    return code


def _seconds(value: time, *, is_end: bool) -> int:
    # time.max stands for "24:00" (end of day): time cannot express 24:00 itself.
    if is_end and value == time.max:
        return _DAY_SECONDS
    return value.hour * 3600 + value.minute * 60 + value.second


def _subtract(segments: list[_Segment], cut: _Segment) -> list[_Segment]:
    out: list[_Segment] = []
    for start, end in segments:
        if cut[1] <= start or cut[0] >= end:
            out.append((start, end))
            continue
        if start < cut[0]:
            out.append((start, cut[0]))
        if cut[1] < end:
            out.append((cut[1], end))
    return out


def _merge(segments: Iterable[_Segment]) -> list[_Segment]:
    merged: list[_Segment] = []
    for start, end in sorted(segments):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _zones(timezones: Iterable[str]) -> tuple[ZoneInfo, ...]:
    names = tuple(dict.fromkeys(timezones))
    if not names:
        # Vacuous truth ("open in every one of no zones") would allow any hour: refuse instead.
        raise ValueError("no timezone given for the number")
    return tuple(ZoneInfo(name) for name in names)


def _aware_utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        # A naive value would be read as the server's local time by astimezone(): a silent bug.
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


def _to_utc(day: date, seconds: int, zone: ZoneInfo, *, is_end: bool) -> datetime:
    """The UTC instant of a local wall time, resolved on the safe side of DST gaps and overlaps."""
    local = datetime.combine(day, time()) + timedelta(seconds=seconds)
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    # For a wall time that is skipped or repeated the two folds differ; opening late and closing early
    # keeps every computed open interval inside the truly open time.
    return min(first, second) if is_end else max(first, second)


def _intersect(left: list[_Interval], right: list[_Interval]) -> list[_Interval]:
    out: list[_Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            out.append((start, end))
        if left[i][1] < right[j][1]:
            i += 1
        else:
            j += 1
    return out


@dataclass(frozen=True, slots=True)
class CallingWindows:
    """Weekly open ranges (Monday first) minus daily breaks, closed all day on holidays; local times."""

    weekly: tuple[tuple[TimeRange, ...], ...]
    breaks: tuple[TimeRange, ...] = ()
    holidays: frozenset[date] = frozenset()
    _segments: tuple[tuple[_Segment, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise CallingWindowsError("weekly needs exactly 7 days, Monday first")
        cuts = [self._segment(r) for r in self.breaks]
        days: list[tuple[_Segment, ...]] = []
        for ranges in self.weekly:
            open_ = _merge(self._segment(r) for r in ranges)
            for cut in cuts:
                open_ = _subtract(open_, cut)
            days.append(tuple(open_))
        object.__setattr__(self, "_segments", tuple(days))

    @staticmethod
    def _segment(value: TimeRange) -> _Segment:
        start, end = _seconds(value[0], is_end=False), _seconds(value[1], is_end=True)
        if start >= end:
            raise CallingWindowsError(f"range {value[0]}–{value[1]} is empty or reversed")
        return (start, end)

    # ---- JSON (Campaign.calling_windows) ----

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, *, regime: str = "CN") -> CallingWindows:
        """Campaign JSON → windows; keys left out (or an empty dict) keep the regime default."""
        base = default_windows(regime)
        if not data:
            return base
        if not isinstance(data, Mapping):
            raise CallingWindowsError("calling windows must be a JSON object")
        unknown = set(data) - _JSON_KEYS
        if unknown:  # a typo such as "holiday" must not silently fall back to the defaults
            raise CallingWindowsError(f"unknown calling-window keys: {', '.join(sorted(map(str, unknown)))}")
        if "weekly" in data and "every_day" in data:
            raise CallingWindowsError("give either weekly or every_day, not both")
        weekly = base.weekly
        if "every_day" in data:
            weekly = (_parse_ranges(data["every_day"], "every_day"),) * 7
        if "weekly" in data:
            table = data["weekly"]
            if not isinstance(table, Mapping) or set(table) - set(WEEKDAYS):
                raise CallingWindowsError(f"weekly must map some of {', '.join(WEEKDAYS)} to ranges")
            # A weekday left out of an explicit weekly table is closed.
            weekly = tuple(_parse_ranges(table.get(day, []), day) for day in WEEKDAYS)
        breaks = _parse_ranges(data["breaks"], "breaks") if "breaks" in data else base.breaks
        holidays = _parse_holidays(data["holidays"]) if "holidays" in data else base.holidays
        return cls(weekly=weekly, breaks=breaks, holidays=holidays)

    def to_json(self) -> dict[str, Any]:
        """The explicit JSON form; from_json(to_json()) gives back an equal value."""
        return {
            "weekly": {day: _format_ranges(self.weekly[i]) for i, day in enumerate(WEEKDAYS)},
            "breaks": _format_ranges(self.breaks),
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
        }

    # ---- queries ----

    def is_open(self, now: datetime, timezones: Iterable[str]) -> bool:
        """True when `now` falls inside the window in every zone the number may be in."""
        instant = _aware_utc(now)
        return all(self._open_at(instant.astimezone(zone)) for zone in _zones(timezones))

    def closed_in(self, now: datetime, timezones: Iterable[str]) -> tuple[str, ...]:
        """The zones (of those given) in which the window is closed at `now`."""
        instant = _aware_utc(now)
        return tuple(z.key for z in _zones(timezones) if not self._open_at(instant.astimezone(z)))

    def next_open(self, now: datetime, timezones: Iterable[str], *, horizon_days: int = 400) -> datetime:
        """The first instant ≥ now (UTC) at which is_open holds; NoOpenWindowError if none in the horizon."""
        start = _aware_utc(now)
        zones = _zones(timezones)
        if all(self._open_at(start.astimezone(zone)) for zone in zones):
            return start
        chunk = timedelta(days=7)
        end = start + timedelta(days=horizon_days)
        low = start
        while low < end:
            high = min(low + chunk, end)
            common = [(low, high)]
            for zone in zones:
                common = _intersect(common, self._utc_intervals(zone, low, high))
                if not common:
                    break
            if common:
                return common[0][0]
            low = high
        raise NoOpenWindowError(f"window never open in all {len(zones)} zone(s) within {horizon_days} days")

    def _open_at(self, local: datetime) -> bool:
        if local.date() in self.holidays:
            return False
        second = local.hour * 3600 + local.minute * 60 + local.second
        return any(start <= second < end for start, end in self._segments[local.weekday()])

    def _utc_intervals(self, zone: ZoneInfo, low: datetime, high: datetime) -> list[_Interval]:
        """Open intervals in one zone, as UTC instants clipped to [low, high), in order."""
        first = low.astimezone(zone).date() - timedelta(days=1)
        last = high.astimezone(zone).date() + timedelta(days=1)
        out: list[_Interval] = []
        day = first
        while day <= last:
            if day not in self.holidays:
                for seg_start, seg_end in self._segments[day.weekday()]:
                    a = max(_to_utc(day, seg_start, zone, is_end=False), low)
                    b = min(_to_utc(day, seg_end, zone, is_end=True), high)
                    if a < b:
                        out.append((a, b))
            day += timedelta(days=1)
        return out


def _parse_time(value: Any, where: str) -> time:
    if value == "24:00":
        return time.max
    if not isinstance(value, str):
        raise CallingWindowsError(f"{where}: time must be a 'HH:MM' string, got {value!r}")
    try:
        parsed = time.fromisoformat(value)
    except ValueError as exc:
        raise CallingWindowsError(f"{where}: {value!r} is not a 'HH:MM' time") from exc
    if parsed.tzinfo is not None or parsed.microsecond:
        raise CallingWindowsError(f"{where}: {value!r} must be a plain local 'HH:MM[:SS]' time")
    return parsed


def _parse_ranges(value: Any, where: str) -> tuple[TimeRange, ...]:
    if not isinstance(value, list | tuple):
        raise CallingWindowsError(f"{where}: expected a list of [start, end] pairs")
    ranges: list[TimeRange] = []
    for item in value:
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise CallingWindowsError(f"{where}: expected [start, end], got {item!r}")
        pair = (_parse_time(item[0], where), _parse_time(item[1], where))
        CallingWindows._segment(pair)  # reject empty or reversed ranges here, with the key in the message
        ranges.append(pair)
    return tuple(sorted(ranges))


def _parse_holidays(value: Any) -> frozenset[date]:
    if not isinstance(value, list | tuple):
        raise CallingWindowsError("holidays: expected a list of 'YYYY-MM-DD' dates")
    try:
        return frozenset(date.fromisoformat(item) for item in value)
    except (TypeError, ValueError) as exc:
        raise CallingWindowsError(f"holidays: {exc}") from exc


def _format_time(value: time) -> str:
    if value == time.max:
        return "24:00"
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _format_ranges(ranges: Iterable[TimeRange]) -> list[list[str]]:
    return [[_format_time(start), _format_time(end)] for start, end in ranges]


def _every_day(*ranges: TimeRange) -> tuple[tuple[TimeRange, ...], ...]:
    return (tuple(ranges),) * 7


_DEFAULTS: dict[str, CallingWindows] = {
    # DESIGN §4 default with the midday rest cut out (see module docstring).
    "CN": CallingWindows(weekly=_every_day((time(9), time(21))), breaks=((time(12), time(13, 30)),)),
    # 47 CFR 64.1200(c)(1): 8 a.m. to 9 p.m. at the called party's location.
    "US": CallingWindows(weekly=_every_day((time(8), time(21)))),
    # UK industry practice (no statutory hours; Ofcom polices misuse, not hours).
    "UK": CallingWindows(weekly=_every_day((time(8), time(21)))),
}

# Where a lead's zone is unknown we assume every zone of the regime's territory, so that an unknown
# location can only make the window narrower, never wider.
REGIME_ZONES: dict[str, tuple[str, ...]] = {
    "CN": ("Asia/Shanghai",),  # China keeps one official time (Beijing time) everywhere
    "US": (
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/Anchorage",
        "Pacific/Honolulu",
    ),
    "UK": ("Europe/London",),
}


def default_windows(regime: str) -> CallingWindows:
    """The regime's default calling windows (CN, US or UK)."""
    return _DEFAULTS[normalize_regime(regime)]


def number_zones(phone_e164: str, stored_timezone: str = "") -> tuple[str, ...]:
    """Every zone the number may be in (from the number itself), else the stored Lead.timezone."""
    # Lead.timezone keeps only the first zone; a US toll-free number lists 42, and the calling-hours
    # check must hold in all of them, so the number is the better source.
    try:
        zones = normalize(phone_e164, default_region="CN").timezones
    except InvalidPhoneNumber:
        zones = ()
    return zones or ((stored_timezone,) if stored_timezone else ())
