"""What happens to a lead after an attempt: its next status and call time, from the outcome or the
agent's disposition and the campaign's retry rules (Campaign.retry_rules JSON).

JSON form, per code (all keys optional; codes left out keep the regime default):
    {"busy": {"delay_minutes": 15, "max": 5}, "brochure_sent": {"status": "callback", "delay_minutes": 4320}}
`max` is how many times that code may occur before the lead is closed (null: no per-code limit; the
campaign's max_attempts still applies to retries). `status` and `contact` are only for campaign-defined
disposition codes; the built-in terminal codes (appointment, not_interested, wrong_number, do_not_call)
cannot be overridden, so a refusal is always honoured.

Errors: `RetryRulesError` (bad JSON, a ValueError) and `UnknownCodeError` (a code neither built in nor
defined by the campaign, a ValueError).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from dialer.compliance.windows import CallingWindows, NoOpenWindowError, normalize_regime

LeadStatus = Literal["new", "callback", "done", "dnc", "invalid"]
LEAD_STATUSES: tuple[LeadStatus, ...] = ("new", "callback", "done", "dnc", "invalid")

# Attempt outcomes, as the attempt state machine reports them.
OUTCOMES = frozenset(
    {
        "answered",
        "busy",
        "no_answer",
        "rejected",
        "congestion",
        "unreachable",
        "abandoned",
        "machine",
        "lost_on_reconnect",
    }
)
# Agent dispositions that end the lead's run in this campaign.
TERMINAL_DISPOSITIONS: dict[str, LeadStatus] = {
    "appointment": "done",  # the goal of a cold call (SEEDS: book a face-to-face meeting)
    "not_interested": "done",
    "wrong_number": "invalid",
    "do_not_call": "dnc",  # propagated to every campaign by the caller (global DNC rule)
}
# Dispositions that schedule a callback: the callee (or the decision maker) agreed to talk again.
CALLBACK_DISPOSITIONS = frozenset({"callback", "decision_maker", "interested"})
# Dispositions after which the lead is simply retried later.
RETRY_DISPOSITIONS = frozenset({"gatekeeper", "no_contact"})
DISPOSITIONS = frozenset(TERMINAL_DISPOSITIONS) | CALLBACK_DISPOSITIONS | RETRY_DISPOSITIONS
# A person on the lead's number was reached: these count against the per-lead contact frequency caps.
# lost_on_reconnect never does (we do not know what happened), nor do machines or unanswered calls.
CONTACT_CODES = frozenset({"answered", "abandoned"}) | DISPOSITIONS - {"no_contact"}

# Ofcom persistent-misuse policy: no re-call within 72 h of an abandoned call (without a live agent).
_UK_ABANDON_DELAY = timedelta(hours=72)


class RetryRulesError(ValueError):
    """Campaign retry rules that cannot be used."""


class UnknownCodeError(ValueError):
    """An outcome or disposition code that is neither built in nor defined by the campaign."""


@dataclass(frozen=True, slots=True)
class RetryRule:
    delay: timedelta
    max_tries: int | None = None  # occurrences of this code before the lead is closed; None: no limit
    status: LeadStatus | None = None  # campaign-defined codes only; None for built-in codes
    contact: bool = True  # campaign-defined codes only: whether a person was reached


@dataclass(frozen=True, slots=True)
class NextStep:
    lead_status: LeadStatus
    next_call_at: datetime | None
    reason: str
    propagate_dnc: bool = False  # the caller adds a global DNC rule (all campaigns) for the number
    customer_contact: bool = False  # record as a contact for the frequency caps


def _minutes(delay: float, max_tries: int | None = None) -> RetryRule:
    return RetryRule(delay=timedelta(minutes=delay), max_tries=max_tries)


_DEFAULT_RULES: dict[str, RetryRule] = {
    "answered": _minutes(24 * 60),  # no disposition came (agent left): look again tomorrow
    "busy": _minutes(15, 5),
    "no_answer": _minutes(120, 5),
    "congestion": _minutes(5, 10),  # the network's fault, not the callee's
    "rejected": _minutes(24 * 60, 2),  # a declined call is a hint; don't insist the same day
    "unreachable": _minutes(24 * 60, 3),
    "abandoned": _minutes(24 * 60, 3),
    "machine": _minutes(240, 3),
    "lost_on_reconnect": _minutes(10, 3),  # our engine lost track of the call, the callee did nothing
    "gatekeeper": _minutes(240, 5),  # reception blocked us: try again later the same day
    "no_contact": _minutes(120, 5),
    "callback": _minutes(24 * 60),  # used only when the agent gives no callback time
    "decision_maker": _minutes(2 * 24 * 60),
    "interested": _minutes(24 * 60),
}


def default_retry_rules(regime: str) -> dict[str, RetryRule]:
    """The built-in retry rules for a regime (CN, US, UK)."""
    rules = dict(_DEFAULT_RULES)
    if normalize_regime(regime) == "UK":
        rules["abandoned"] = RetryRule(delay=_UK_ABANDON_DELAY, max_tries=3)
    return rules


def _int_field(entry: Mapping[str, Any], key: str, code: str, *, minimum: int) -> int | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RetryRulesError(f"{code}.{key} must be an integer ≥ {minimum}, got {value!r}")
    return value


def retry_rules_from_json(data: Mapping[str, Any] | None, *, regime: str) -> dict[str, RetryRule]:
    """Campaign.retry_rules JSON merged over the regime defaults."""
    rules = default_retry_rules(regime)
    if not data:
        return rules
    if not isinstance(data, Mapping):
        raise RetryRulesError("retry rules must be a JSON object")
    for code, entry in data.items():
        if code in TERMINAL_DISPOSITIONS:
            raise RetryRulesError(f"{code} is a closing disposition and cannot be given retry rules")
        if not isinstance(entry, Mapping) or set(entry) - {"delay_minutes", "max", "status", "contact"}:
            raise RetryRulesError(
                f"{code}: expected {{delay_minutes, max}} (and status/contact for own codes)"
            )
        base = rules.get(code)
        if base is None and "status" not in entry and "delay_minutes" not in entry:
            raise RetryRulesError(f"{code}: a campaign-defined code needs a status or a delay_minutes")
        if base is not None and ("status" in entry or "contact" in entry):
            raise RetryRulesError(f"{code} is built in: only delay_minutes and max may be changed")
        minutes = _int_field(entry, "delay_minutes", code, minimum=0)
        delay = timedelta(minutes=minutes) if minutes is not None else base.delay if base else timedelta(0)
        if code == "abandoned" and normalize_regime(regime) == "UK":
            delay = max(delay, _UK_ABANDON_DELAY)  # Ofcom's 72 h: a campaign may lengthen it, not shorten it
        max_tries = base.max_tries if base is not None else None
        if "max" in entry:
            max_tries = _int_field(entry, "max", code, minimum=1)
        status = entry.get("status")
        if status is not None and status not in LEAD_STATUSES:
            raise RetryRulesError(f"{code}.status must be one of {', '.join(LEAD_STATUSES)}")
        contact = entry.get("contact", True)
        if not isinstance(contact, bool):
            raise RetryRulesError(f"{code}.contact must be true or false")
        rules[code] = RetryRule(delay=delay, max_tries=max_tries, status=status, contact=contact)
    return rules


def retry_rules_to_json(rules: Mapping[str, RetryRule]) -> dict[str, dict[str, Any]]:
    """The explicit JSON form of a rule table (whole minutes)."""
    out: dict[str, dict[str, Any]] = {}
    for code, rule in sorted(rules.items()):
        entry: dict[str, Any] = {
            "delay_minutes": int(rule.delay.total_seconds() // 60),
            "max": rule.max_tries,
        }
        if code not in OUTCOMES and code not in DISPOSITIONS:
            if rule.status is not None:
                entry["status"] = rule.status
            entry["contact"] = rule.contact
        out[code] = entry
    return out


def _into_window(due: datetime, windows: CallingWindows | None, timezones: tuple[str, ...]) -> datetime:
    if windows is None or not timezones:
        return due
    try:
        return windows.next_open(due, timezones)
    except (NoOpenWindowError, ValueError, KeyError, OSError):
        # An unusable zone or a window that never opens: keep the plain time; the compliance check at
        # dial time reports the real reason.
        return due


def next_step(
    code: str,
    *,
    now: datetime,
    rules: Mapping[str, RetryRule],
    attempts: int,
    max_attempts: int,
    code_count: int | None = None,
    callback_at: datetime | None = None,
    windows: CallingWindows | None = None,
    timezones: tuple[str, ...] = (),
) -> NextStep:
    """The lead's next status and call time after outcome or disposition `code`.

    attempts: the lead's attempts including this one; code_count: how often `code` has occurred for the
    lead including now (defaults to attempts, the safe upper bound); callback_at: the time agreed with
    the callee; windows/timezones: when given, the next call time is moved into the calling window.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    if code in TERMINAL_DISPOSITIONS:
        closing = TERMINAL_DISPOSITIONS[code]
        return NextStep(closing, None, code, propagate_dnc=closing == "dnc", customer_contact=True)
    rule = rules.get(code)
    if rule is None:
        raise UnknownCodeError(f"unknown outcome or disposition {code!r}")

    builtin = code in OUTCOMES or code in DISPOSITIONS
    contact = code in CONTACT_CODES if builtin else rule.contact
    if builtin:
        status: LeadStatus = "callback" if code in CALLBACK_DISPOSITIONS else "new"
    else:
        status = rule.status or "new"
    if status in ("done", "dnc", "invalid"):
        # A campaign-defined closing code; "dnc" is a refusal like do_not_call and spreads the same way.
        return NextStep(status, None, code, propagate_dnc=status == "dnc", customer_contact=contact)

    count = attempts if code_count is None else code_count
    if rule.max_tries is not None and count >= rule.max_tries:
        return NextStep("done", None, f"{code}_max_tries", customer_contact=contact)
    if status == "callback":
        # An agreed callback is not cut short by max_attempts (see rules.check_dialable).
        wanted = callback_at if callback_at is not None else now + rule.delay
        wanted = wanted.replace(tzinfo=UTC) if wanted.tzinfo is None else wanted.astimezone(UTC)
        due = _into_window(max(wanted, now), windows, timezones)
        return NextStep("callback", due, code, customer_contact=contact)
    if attempts >= max_attempts:
        return NextStep("done", None, "max_attempts", customer_contact=contact)
    due = _into_window(now + rule.delay, windows, timezones)
    return NextStep("new", due, code, customer_contact=contact)
