"""Agent use cases: log in to a campaign, ready/pause/logout, and dispositions that drive the lead.

The dialer engine owns the on_call and wrap_up transitions (they come from PBX events); the agent owns
ready, paused and logout, and ends wrap-up by submitting the disposition. Services don't commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents import repository
from agents.models import AgentSession
from core import audit
from core.errors import Conflict, NotFound, ValidationFailed
from dialer import ledger
from dialer.compliance.next_step import (
    CALLBACK_DISPOSITIONS,
    DISPOSITIONS,
    UnknownCodeError,
    next_step,
    retry_rules_from_json,
)
from dialer.compliance.rules import check_dialable
from dialer.dnc import dnc_matcher
from dialer.hopper import PREVIEW_REQUESTED, new_attempt_id, open_attempt, reserve_leads
from dialer.models import Attempt, Call, Callback, Campaign, Disposition, Lead
from ivr.models import NumberRule

AGENT_SET_STATES = frozenset({"ready", "paused"})
PAUSE_REASONS = frozenset({"break", "lunch", "meeting", "training", "coaching", "technical", "other"})
GRADES = frozenset({"", "A", "B", "C"})


def login(session: Session, *, user_id: int, campaign_id: int, extension: str, now: datetime) -> AgentSession:
    """Start (or move) the agent's session on a campaign, paused until they say ready."""
    if session.get(Campaign, campaign_id) is None:
        raise NotFound(f"campaign {campaign_id} not found")
    if not extension.isdigit() or not 2 <= len(extension) <= 8:
        raise ValidationFailed("extension must be 2 to 8 digits", details={"field": "extension"})
    taken = session.scalar(
        select(AgentSession).where(AgentSession.extension == extension, AgentSession.user_id != user_id)
    )
    if taken is not None:
        raise Conflict(f"extension {extension} is in use by another agent")
    row = session.get(AgentSession, user_id)
    if row is not None and row.state in ("on_call", "reserved"):
        raise Conflict("finish the current call before switching campaign")
    if row is None:
        row = AgentSession(user_id=user_id, campaign_id=campaign_id, extension=extension, logged_in_at=now)
        session.add(row)
    row.campaign_id = campaign_id
    row.extension = extension
    row.state = "paused"
    row.pause_reason = "login"
    row.state_since = now
    row.wrap_until = None
    return row


def set_state(session: Session, *, user_id: int, state: str, reason: str = "", now: datetime) -> AgentSession:
    """Agent-chosen transitions: ready or paused (with a reason code)."""
    if state not in AGENT_SET_STATES:
        raise ValidationFailed(f"state must be one of {sorted(AGENT_SET_STATES)}")
    row = repository.agent_session(session, user_id)
    if row.state in ("on_call", "reserved"):
        raise Conflict("on a call: the state changes when the call ends")
    if row.state == "wrap_up":
        raise Conflict("submit the disposition of the last call first")
    if state == "paused" and reason not in PAUSE_REASONS:
        raise ValidationFailed(f"pause reason must be one of {sorted(PAUSE_REASONS)}")
    row.state = state
    row.pause_reason = reason if state == "paused" else ""
    row.state_since = now
    return row


def logout(session: Session, *, user_id: int, now: datetime) -> None:
    row = repository.agent_session(session, user_id)
    if row.state in ("on_call", "reserved"):
        raise Conflict("finish the current call before logging out")
    row.state = "logged_out"
    row.state_since = now


@dataclass(frozen=True, slots=True)
class DispositionInput:
    code: str
    notes: str = ""
    grade: str = ""
    man_money: bool | None = None
    man_authority: bool | None = None
    man_need: bool | None = None
    callback_at: datetime | None = None
    callback_personal: bool = True
    details: dict[str, Any] | None = None  # appointment: {at, place, attendees, materials}
    script_trail: list[Any] | None = None
    then: str = "ready"  # state after the disposition: ready | paused


def submit_disposition(
    session: Session, *, user_id: int, data: DispositionInput, now: datetime, actor: audit.Actor
) -> Disposition:
    """Record the outcome of the agent's current (or just finished) call and schedule the lead."""
    row = repository.agent_session(session, user_id)
    if row.attempt_id is None or row.lead_id is None:
        raise Conflict("no call to disposition")
    campaign = session.get(Campaign, row.campaign_id)
    lead = session.get(Lead, row.lead_id)
    if campaign is None or lead is None:
        raise NotFound("the call's campaign or lead no longer exists")
    _validate(data, campaign, now)
    try:
        step = next_step(
            data.code,
            now=now,
            rules=retry_rules_from_json(campaign.retry_rules or None, regime=campaign.regime),
            attempts=lead.attempts,
            max_attempts=campaign.max_attempts,
            callback_at=data.callback_at,
        )
    except UnknownCodeError as exc:
        raise ValidationFailed(str(exc), details={"field": "code"}) from exc
    call = session.scalar(select(Call).where(Call.attempt_id == row.attempt_id))
    disposition = Disposition(
        call_id=call.id if call else None,
        attempt_id=row.attempt_id,
        lead_id=lead.id,
        agent_user_id=user_id,
        code=data.code,
        notes=data.notes,
        grade=data.grade,
        details=data.details or {},
        script_trail=data.script_trail or [],
        created_at=now,
    )
    session.add(disposition)
    if call is not None:
        call.disposition_code = data.code
    lead.status = step.lead_status
    lead.next_call_at = step.next_call_at
    lead.last_outcome = data.code
    if data.grade:
        lead.grade = data.grade
    for flag in ("man_money", "man_authority", "man_need"):
        value = getattr(data, flag)
        if value is not None:
            setattr(lead, flag, value)
    if data.code in CALLBACK_DISPOSITIONS and data.callback_at is not None:
        session.add(
            Callback(
                lead_id=lead.id,
                campaign_id=campaign.id,
                due_at=data.callback_at,
                owner_user_id=user_id if data.callback_personal else None,
                note=data.notes,
            )
        )
        lead.owner_user_id = user_id if data.callback_personal else None
    if step.propagate_dnc:
        _add_global_dnc(session, lead.phone_e164, user_id=user_id, actor=actor, now=now)
    row.state = "ready" if data.then == "ready" else "paused"
    row.pause_reason = "" if data.then == "ready" else "after_call"
    row.state_since = now
    row.wrap_until = None
    row.attempt_id = None
    row.lead_id = None
    return disposition


def _validate(data: DispositionInput, campaign: Campaign, now: datetime) -> None:
    allowed = {d.get("code") for d in campaign.dispositions if isinstance(d, dict)} or set(DISPOSITIONS)
    if data.code not in allowed and data.code not in DISPOSITIONS:
        raise ValidationFailed(f"unknown disposition {data.code!r}", details={"field": "code"})
    if data.grade not in GRADES:
        raise ValidationFailed("grade must be A, B or C", details={"field": "grade"})
    if data.code in CALLBACK_DISPOSITIONS:
        if data.callback_at is None:
            raise ValidationFailed("a callback needs a time", details={"field": "callback_at"})
        if data.callback_at <= now or data.callback_at > now + timedelta(days=365):
            raise ValidationFailed(
                "callback time must be in the next 12 months", details={"field": "callback_at"}
            )
    if data.code == "appointment" and not (data.details or {}).get("at"):
        raise ValidationFailed("an appointment needs a time", details={"field": "details.at"})
    if data.then not in ("ready", "paused"):
        raise ValidationFailed("then must be ready or paused", details={"field": "then"})
    if len(data.notes) > 10_000:
        raise ValidationFailed("notes are limited to 10,000 characters", details={"field": "notes"})


def _add_global_dnc(session: Session, e164: str, *, user_id: int, actor: audit.Actor, now: datetime) -> None:
    """A refusal applies to every campaign at once (DESIGN §4, consent/refusal ledger)."""
    exists = session.scalar(
        select(NumberRule.id).where(
            NumberRule.purpose == "dnc",
            NumberRule.kind == "exact",
            NumberRule.value == e164,
            NumberRule.scope == "global",
        )
    )
    if exists is None:
        session.add(
            NumberRule(
                purpose="dnc",
                kind="exact",
                value=e164,
                action="block",
                scope="global",
                source="agent_disposition",
                reason="callee asked not to be called",
                created_by_id=user_id,
                created_at=now,
            )
        )
    # Leads with this number in every other campaign stop now, not at their next hopper pass.
    for other in session.scalars(select(Lead).where(Lead.phone_e164 == e164, Lead.status != "dnc")):
        other.status = "dnc"
        other.next_call_at = None
    audit.record(
        session,
        actor,
        action="dnc.add",
        entity_type="number_rule",
        entity_id=e164,
        details={"source": "disposition"},
    )


def open_attempt_for(session: Session, user_id: int) -> Attempt | None:
    row = session.get(AgentSession, user_id)
    return session.get(Attempt, row.attempt_id) if row and row.attempt_id else None


# --- preview mode and callbacks (agent workspace API) -------------------------------------------------
PREVIEW_ROUNDS = 5  # leads skipped for compliance per request before giving up for now


def reserve_preview_lead(session: Session, *, user_id: int, now: datetime) -> Lead | None:
    """Preview mode: lock the next dialable lead of the agent's campaign for this agent alone.

    The hopper's `FOR UPDATE SKIP LOCKED` keeps two agents from getting the same lead; leads that fail
    the compliance check are parked exactly as the engine parks them. None: nothing is due now.
    """

    row = repository.agent_session(session, user_id)
    if row.state == "reserved" and row.lead_id is not None:
        return session.get(Lead, row.lead_id)  # asking again shows the same reservation
    if row.state not in AGENT_SET_STATES:
        raise Conflict(f"cannot take a preview lead while {row.state}")
    campaign = session.get(Campaign, row.campaign_id)
    if campaign is None:
        raise NotFound("the session's campaign no longer exists")
    if campaign.dial_mode != "preview":
        raise Conflict(f"campaign {campaign.name!r} dials in {campaign.dial_mode} mode, not preview")
    policy = ledger.campaign_policy(campaign)
    skipped: list[int] = []
    for _ in range(PREVIEW_ROUNDS):
        leads = reserve_leads(session, campaign_id=campaign.id, limit=1, now=now, exclude_ids=skipped)
        if not leads:
            return None
        lead = leads[0]
        contacts, abandons = ledger.contact_history(session, [lead.phone_e164], now=now)
        facts = ledger.lead_facts(lead, contacts, abandons)
        verdict = check_dialable(
            facts,
            policy,
            now,
            dnc_hit=dnc_matcher(session, campaign_id=campaign.id, now=now, numbers=[lead.phone_e164])(
                lead.phone_e164
            ),
            caller_id=campaign.caller_id_number,
            agent_reserved=True,
        )
        if verdict.allowed:
            row.state = "reserved"
            row.pause_reason = ""
            row.state_since = now
            row.lead_id = lead.id
            row.attempt_id = None
            return lead
        skipped.append(lead.id)
        ledger.skip_lead(lead, verdict, now)
    return None


def request_preview_dial(session: Session, *, user_id: int, now: datetime) -> Attempt:
    """Write the ledger row for the reserved preview lead, in state PREVIEW_REQUESTED.

    The dialer engine originates PREVIEW_REQUESTED attempts (it owns the AMI connection); asking twice
    returns the same attempt, so a double click never dials twice.
    """

    row = repository.agent_session(session, user_id)
    if row.state != "reserved" or row.lead_id is None:
        raise Conflict("reserve a preview lead first")
    if row.attempt_id is not None:
        existing = session.get(Attempt, row.attempt_id)
        if existing is not None:
            return existing
    lead = session.get(Lead, row.lead_id)
    campaign = session.get(Campaign, row.campaign_id)
    if lead is None or campaign is None:
        raise NotFound("the reserved lead no longer exists")
    if dnc_matcher(session, campaign_id=campaign.id, now=now, numbers=[lead.phone_e164])(lead.phone_e164):
        raise Conflict("the number is on a do-not-call list: skip this lead", error_id="dnc")
    attempt_id = new_attempt_id()
    attempt = open_attempt(
        session, lead, dialer_node=campaign.dialer_node, now=now, action_id=attempt_id, attempt_id=attempt_id
    )
    attempt.state = PREVIEW_REQUESTED
    attempt.agent_user_id = user_id
    session.flush()
    row.attempt_id = attempt.id
    return attempt


def skip_preview_lead(session: Session, *, user_id: int, now: datetime, delay: timedelta) -> Lead:
    """Give the reserved preview lead back (due again after `delay`); the agent becomes ready."""
    row = repository.agent_session(session, user_id)
    if row.state != "reserved" or row.lead_id is None:
        raise Conflict("no preview lead reserved")
    if row.attempt_id is not None:
        raise Conflict("the lead is already being dialled")
    lead = session.get(Lead, row.lead_id)
    if lead is None:
        raise NotFound("the reserved lead no longer exists")
    if lead.status == "dialing":
        # reserve_leads overwrote the status; an open callback is the only state worth restoring.
        open_callback = session.scalar(
            select(Callback.id).where(Callback.lead_id == lead.id, Callback.done_at.is_(None)).limit(1)
        )
        lead.status = "callback" if open_callback is not None else "new"
    if delay > timedelta(0):
        lead.next_call_at = max(lead.next_call_at or now, now + delay)
    row.state = "ready"
    row.pause_reason = ""
    row.state_since = now
    row.lead_id = None
    return lead


def close_open_callbacks(session: Session, *, lead_id: int, now: datetime) -> int:
    """Mark the lead's pending callbacks done (a new disposition has dealt with them)."""
    rows = list(
        session.scalars(select(Callback).where(Callback.lead_id == lead_id, Callback.done_at.is_(None)))
    )
    for callback in rows:
        callback.done_at = now
    return len(rows)
