"""Whether a lead may be dialled now, and why not: the pure compliance check run before every dial.

The rules, per regime profile (DESIGN §4, SEEDS "Rules from regulators"):

- Calling hours in the callee's local time: see windows.py (47 CFR 64.1200(c)(1) for the US).
- Do-not-call: national and internal lists (47 CFR 64.1200(c)(2), (d)); the caller looks the number up in
  the number-rule table and passes `dnc_hit`, so this module stays free of I/O.
- Consent and refusal: in China commercial calls need the callee's consent and a refusal must be
  honoured (MIIT rules on commercial SMS and voice calls); a recorded refusal blocks every regime.
- Caller ID: one fixed, registered number per campaign; the CN profile forbids altering, hiding or
  borrowing caller numbers (MIIT), and US rules require a caller ID to be sent (47 CFR 64.1601(e)).
- Abandoned calls: ≤ 3 % of live-answered calls per campaign, over 30 days in the US (47 CFR
  64.1200(a)(7)) and over any 24 h in the UK (Ofcom persistent-misuse policy); a message within 2 s; ring
  ≥ 15 s (47 CFR 64.1200(a)(6)); in the UK no re-call within 72 h of an abandoned call unless a live
  agent is guaranteed (Ofcom).
- Contact frequency across agents: our users' own complaint (three colleagues calling one customer in
  half a day) and the carriers' call-frequency limits in China.

Every skip carries a stable reason code and, where waiting helps, the time at which it clears.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from dialer.compliance.next_step import retry_rules_from_json
from dialer.compliance.windows import (
    REGIME_ZONES,
    CallingWindows,
    CallingWindowsError,
    NoOpenWindowError,
    normalize_regime,
)

# 47 CFR 64.1200(a)(6): do not give up on an unanswered call before 15 s (or four rings); Ofcom
# asks the same, and the CN profile adopts it because a short ring is how nuisance callers probe numbers.
MIN_RING_SECONDS = 15
# 47 CFR 64.1200(a)(7)(i): the abandoned-call message must start within 2 s of the greeting.
SAFE_HARBOUR_MAX_DELAY_S = 2.0
# 47 CFR 64.1200(a)(7) and Ofcom: 3 % of live-answered calls per campaign. The FCC measures over 30
# days; Ofcom over any 24 h, so a UK campaign must pass both (DESIGN §4 asks for the 30-day figure).
ABANDON_CEILING = 0.03
ABANDON_WINDOW = timedelta(days=30)
ABANDON_WINDOWS: dict[str, tuple[timedelta, ...]] = {
    "CN": (ABANDON_WINDOW,),  # no CN rule; the product applies the same budget everywhere
    "US": (ABANDON_WINDOW,),
    "UK": (ABANDON_WINDOW, timedelta(hours=24)),
}
# Ofcom persistent-misuse policy: no repeat call within 72 h of an abandoned call without a live agent.
UK_ABANDON_RECALL_BLOCK = timedelta(hours=72)

CLOSED_STATUSES = frozenset({"done", "invalid"})
_CALLER_ID = re.compile(r"\+?[0-9]{3,16}")


class SkipCode(StrEnum):
    """Stable reason codes, logged with every skipped dial and shown in reports."""

    LEAD_CLOSED = "lead_closed"
    DNC = "dnc"
    REFUSED_CONSENT = "refused_consent"
    NO_CONSENT = "no_consent"
    NO_CALLER_ID = "no_caller_id"
    MAX_ATTEMPTS = "max_attempts"
    RETRY_SPACING = "retry_spacing"
    RECENT_ABANDON = "recent_abandon"
    FREQUENCY_CAP = "frequency_cap"
    OUTSIDE_CALLING_WINDOW = "outside_calling_window"


@dataclass(frozen=True, slots=True)
class SkipReason:
    code: SkipCode
    detail: str
    retry_at: datetime | None = None  # None: waiting will not help (needs a person or a config change)


@dataclass(frozen=True, slots=True)
class ComplianceVerdict:
    allowed: bool
    reasons: tuple[SkipReason, ...] = ()
    # The earliest time at which every reason has cleared and the window is open; None when allowed or
    # when some reason is permanent. Suitable for Lead.next_call_at.
    retry_at: datetime | None = None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(reason.code.value for reason in self.reasons)


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most `max_contacts` customer contacts (any agent, any campaign) within `window`."""

    max_contacts: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.max_contacts < 1 or self.window <= timedelta(0):
            raise ValueError("a frequency cap needs max_contacts ≥ 1 and a positive window")


DEFAULT_FREQUENCY_CAPS = (
    FrequencyCap(max_contacts=2, window=timedelta(hours=24)),
    FrequencyCap(max_contacts=3, window=timedelta(days=7)),
)


@dataclass(frozen=True, slots=True)
class LeadFacts:
    """What the check needs to know about a lead; datetimes naive are taken as UTC (like core.db)."""

    phone_e164: str
    timezones: tuple[str, ...] = ()  # core.phone.normalize(...).timezones; all zones, not only the first
    status: str = "new"
    attempts: int = 0
    last_attempt_at: datetime | None = None
    last_outcome: str = ""
    contacts: tuple[datetime, ...] = ()  # customer contacts by any agent/campaign, recent ones suffice
    last_abandon_at: datetime | None = None
    consent: bool = False  # consent ledger: the callee agreed to commercial calls
    refused: bool = False  # consent ledger: the callee refused calls
    dnc: bool = False  # the lead's own do-not-call flag


@dataclass(frozen=True, slots=True)
class CampaignPolicy:
    regime: str
    windows: CallingWindows
    caller_id: str  # the campaign's registered number; "" accepts any well-formed caller ID
    max_attempts: int = 5
    min_retry_spacing: Mapping[str, timedelta] = field(default_factory=dict)  # by last outcome
    frequency_caps: tuple[FrequencyCap, ...] = DEFAULT_FREQUENCY_CAPS
    abandon_recall_block: timedelta | None = None
    require_consent: bool = False
    fallback_timezones: tuple[str, ...] = ()  # when the lead's zones are unknown; regime zones if empty

    @classmethod
    def for_regime(
        cls,
        regime: str,
        *,
        caller_id: str,
        calling_windows: Mapping[str, Any] | None = None,
        retry_rules: Mapping[str, Any] | None = None,
        max_attempts: int = 5,
        frequency_caps: Iterable[FrequencyCap] | None = None,
        require_consent: bool | None = None,
    ) -> CampaignPolicy:
        """A policy from a campaign's settings (Campaign.regime, calling_windows, retry_rules, …).

        Campaign.calling_windows may also carry the policy keys `require_consent` (bool) and
        `frequency_caps` ([{"max_contacts": 2, "hours": 24}, …]); keyword arguments win over them.
        """
        code = normalize_regime(regime)
        settings = dict(calling_windows or {})
        policy_keys = {key: settings.pop(key) for key in POLICY_JSON_KEYS if key in settings}
        rules = retry_rules_from_json(retry_rules, regime=code)
        block = UK_ABANDON_RECALL_BLOCK if code == "UK" else None
        spacing = {
            outcome: rule.delay
            for outcome, rule in rules.items()
            # With a UK block the dedicated recent_abandon check owns abandons (it knows Ofcom's
            # live-agent exception, which a plain spacing rule would override).
            if rule.status is None and not (block is not None and outcome == "abandoned")
        }
        if frequency_caps is None and "frequency_caps" in policy_keys:
            frequency_caps = _caps_from_json(policy_keys["frequency_caps"])
        if require_consent is None and "require_consent" in policy_keys:
            if not isinstance(policy_keys["require_consent"], bool):
                raise CallingWindowsError("require_consent must be true or false")
            require_consent = policy_keys["require_consent"]
        return cls(
            regime=code,
            windows=CallingWindows.from_json(settings, regime=code),
            caller_id=caller_id.strip(),
            max_attempts=max_attempts,
            min_retry_spacing=spacing,
            frequency_caps=DEFAULT_FREQUENCY_CAPS if frequency_caps is None else tuple(frequency_caps),
            abandon_recall_block=block,
            # China: commercial calls need the callee's consent (MIIT); elsewhere consent is a campaign
            # choice (e.g. US prerecorded calls), so it stays off unless asked for.
            require_consent=(code == "CN") if require_consent is None else require_consent,
        )


POLICY_JSON_KEYS = ("require_consent", "frequency_caps")


def _caps_from_json(value: Any) -> tuple[FrequencyCap, ...]:
    if not isinstance(value, list | tuple):
        raise CallingWindowsError('frequency_caps: expected [{"max_contacts": 2, "hours": 24}, …]')
    caps: list[FrequencyCap] = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"max_contacts", "hours"}:
            raise CallingWindowsError(f"frequency_caps: expected max_contacts and hours, got {item!r}")
        count, hours = item["max_contacts"], item["hours"]
        if isinstance(count, bool) or not isinstance(count, int) or isinstance(hours, bool):
            raise CallingWindowsError(f"frequency_caps: bad values in {item!r}")
        if not isinstance(hours, int | float) or not 0 < hours <= 24 * 366 or count < 1:
            raise CallingWindowsError(f"frequency_caps: bad values in {item!r}")
        caps.append(FrequencyCap(max_contacts=count, window=timedelta(hours=hours)))
    return tuple(caps)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _usable_zones(names: Iterable[str]) -> tuple[str, ...]:
    usable: list[str] = []
    for name in names:
        try:
            ZoneInfo(name)
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            continue
        usable.append(name)
    return tuple(dict.fromkeys(usable))


def lead_zones(lead: LeadFacts, policy: CampaignPolicy) -> tuple[str, ...]:
    """The zones the window check uses: the lead's known zones, else the policy's fallback or the regime's."""
    return (
        _usable_zones(lead.timezones)
        or _usable_zones(policy.fallback_timezones)
        or REGIME_ZONES[normalize_regime(policy.regime)]
    )


def _safe_next_open(windows: CallingWindows, at: datetime, zones: tuple[str, ...]) -> datetime | None:
    try:
        return windows.next_open(at, zones)
    except (NoOpenWindowError, OverflowError):
        return None


def _permanent_reasons(
    lead: LeadFacts, policy: CampaignPolicy, *, dnc_hit: bool, caller_id: str
) -> list[SkipReason]:
    reasons: list[SkipReason] = []
    if lead.status in CLOSED_STATUSES:
        reasons.append(SkipReason(SkipCode.LEAD_CLOSED, f"lead status is {lead.status}"))
    if dnc_hit or lead.dnc or lead.status == "dnc":
        source = "number is on a do-not-call list" if dnc_hit else "lead is marked do-not-call"
        reasons.append(SkipReason(SkipCode.DNC, source))
    if lead.refused:
        reasons.append(SkipReason(SkipCode.REFUSED_CONSENT, "the callee refused calls (honoured)"))
    elif policy.require_consent and not lead.consent:
        reasons.append(SkipReason(SkipCode.NO_CONSENT, f"{policy.regime} profile requires recorded consent"))
    presented = caller_id.strip()
    if not _CALLER_ID.fullmatch(presented) or not presented.strip("+0"):
        reasons.append(SkipReason(SkipCode.NO_CALLER_ID, f"caller ID {caller_id!r} is missing or malformed"))
    elif policy.caller_id and presented != policy.caller_id:
        # No rotation: the campaign always presents its one registered number (MIIT; SEEDS caller ID).
        reasons.append(
            SkipReason(
                SkipCode.NO_CALLER_ID,
                f"caller ID {presented} is not the campaign's registered number {policy.caller_id}",
            )
        )
    # A callback was asked for by the callee; the attempt cap exists to stop pestering numbers that do
    # not answer, so it does not cancel an agreed callback (frequency caps still apply).
    if lead.status != "callback" and lead.attempts >= policy.max_attempts:
        reasons.append(
            SkipReason(SkipCode.MAX_ATTEMPTS, f"{lead.attempts} of {policy.max_attempts} attempts used")
        )
    return reasons


def _timed_reasons(
    lead: LeadFacts, policy: CampaignPolicy, now: datetime, *, agent_reserved: bool
) -> list[SkipReason]:
    reasons: list[SkipReason] = []
    spacing = policy.min_retry_spacing.get(lead.last_outcome)
    if lead.last_attempt_at is not None and spacing and lead.status != "callback":
        clears = _utc(lead.last_attempt_at) + spacing
        if now < clears:
            detail = f"last outcome {lead.last_outcome}: wait {spacing} between attempts"
            reasons.append(SkipReason(SkipCode.RETRY_SPACING, detail, clears))

    abandons = [_utc(t) for t in (lead.last_abandon_at,) if t is not None]
    if lead.last_outcome == "abandoned" and lead.last_attempt_at is not None:
        abandons.append(_utc(lead.last_attempt_at))
    if policy.abandon_recall_block is not None and abandons and not agent_reserved:
        clears = max(abandons) + policy.abandon_recall_block
        if now < clears:
            detail = f"abandoned call on {max(abandons).isoformat()}; no re-call without a live agent"
            reasons.append(SkipReason(SkipCode.RECENT_ABANDON, detail, clears))

    contacts = sorted(_utc(t) for t in lead.contacts)
    for cap in policy.frequency_caps:
        recent = [t for t in contacts if t > now - cap.window]
        if len(recent) >= cap.max_contacts:
            # The cap clears when enough of the recent contacts have aged out of the window.
            clears = recent[len(recent) - cap.max_contacts] + cap.window
            detail = f"{len(recent)} contacts within {cap.window} (cap {cap.max_contacts})"
            reasons.append(SkipReason(SkipCode.FREQUENCY_CAP, detail, max(clears, now)))
    return reasons


def check_dialable(
    lead: LeadFacts,
    policy: CampaignPolicy,
    now: datetime,
    *,
    dnc_hit: bool,
    caller_id: str,
    agent_reserved: bool = False,
) -> ComplianceVerdict:
    """Every reason the lead may not be dialled at `now` (aware); allowed when there are none.

    `agent_reserved`: a live agent is already waiting for this call (preview/progressive), which Ofcom
    accepts for a re-call within 72 h of an abandoned call.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    reasons = _permanent_reasons(lead, policy, dnc_hit=dnc_hit, caller_id=caller_id)
    reasons += _timed_reasons(lead, policy, now, agent_reserved=agent_reserved)

    zones = lead_zones(lead, policy)
    closed = policy.windows.closed_in(now, zones)
    if closed:
        local = now.astimezone(ZoneInfo(closed[0]))
        detail = f"closed at {local:%a %H:%M} {closed[0]} time"
        if len(zones) > 1:
            detail += f" (number may be in {len(zones)} zones; all must be open)"
        reasons.append(
            SkipReason(SkipCode.OUTSIDE_CALLING_WINDOW, detail, _safe_next_open(policy.windows, now, zones))
        )

    if not reasons:
        return ComplianceVerdict(allowed=True)
    retry_at: datetime | None = None
    if all(reason.retry_at is not None for reason in reasons):
        # Time only clears the timed reasons, so once the latest has cleared only the window remains.
        latest = max(reason.retry_at for reason in reasons if reason.retry_at is not None)
        retry_at = _safe_next_open(policy.windows, latest, zones)
    return ComplianceVerdict(allowed=False, reasons=tuple(reasons), retry_at=retry_at)


@dataclass(frozen=True, slots=True)
class AbandonBudget:
    rate: float  # abandoned / live-answered over the window
    remaining_abandons: int  # abandons still allowed before the target is exceeded
    exceeded: bool


def abandon_budget(answered: int, abandoned: int, target: float = ABANDON_CEILING) -> AbandonBudget:
    """The campaign's abandon budget over the rolling 30 days.

    `answered` counts every call answered by a live person, abandoned ones included: that is the
    denominator in 47 CFR 64.1200(a)(7) and in Ofcom's policy. See abandon_windows for the periods.
    """
    if answered < 0 or abandoned < 0 or abandoned > answered:
        raise ValueError("need 0 ≤ abandoned ≤ answered")
    if not 0.0 <= target <= 1.0:
        raise ValueError("target is a fraction between 0 and 1")
    # The epsilon keeps 3 of 100 at 3 % from reading as 3.0000000000000004 abandons allowed or exceeded.
    allowed = math.floor(target * answered + 1e-9)
    return AbandonBudget(
        rate=abandoned / answered if answered else 0.0,
        remaining_abandons=max(allowed - abandoned, 0),
        exceeded=abandoned > allowed,
    )


def abandon_windows(regime: str) -> tuple[timedelta, ...]:
    """The rolling windows over which abandon_budget must hold for the regime (UK: 30 days and 24 h)."""
    return ABANDON_WINDOWS[normalize_regime(regime)]


def effective_abandon_target(regime: str, configured: float) -> float:
    """The campaign's abandon target, never above the 3 % ceiling."""
    normalize_regime(regime)  # every profile we have uses the same ceiling (DESIGN §4)
    return min(max(configured, 0.0), ABANDON_CEILING)


def min_ring_seconds(regime: str) -> int:
    """The shortest ring before an unanswered call may be dropped (≥ 15 s in every profile)."""
    normalize_regime(regime)
    return MIN_RING_SECONDS


def effective_ring_timeout(regime: str, configured_s: int) -> int:
    """Campaign.ring_timeout_s raised to the regime's minimum ring time."""
    return max(configured_s, min_ring_seconds(regime))
