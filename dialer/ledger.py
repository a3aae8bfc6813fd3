"""The dialer engine's database side: campaign snapshots in, attempt results and agent states out.

Functions take a session and values and never commit: the engine wraps each call in a unit of work, so
a ledger write either lands whole or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.models import AgentSession
from dialer.attempts.outcome import Outcome
from dialer.attempts.tracker import AttemptFinished
from dialer.compliance.next_step import OUTCOMES, next_step, retry_rules_from_json
from dialer.compliance.rules import CampaignPolicy, LeadFacts, check_dialable
from dialer.compliance.windows import number_zones
from dialer.dnc import dnc_matcher
from dialer.hopper import PREVIEW_REQUESTED, open_attempt, reserve_leads
from dialer.models import Attempt, Call, Campaign, Lead
from dialer.pacing.estimator import DialOutcome
from recordings.models import Recording

log = logging.getLogger(__name__)
ABANDON_WINDOW = timedelta(days=30)  # DESIGN §4: abandon rate over a rolling 30 days per campaign
ESTIMATE_WINDOW = timedelta(hours=1)


def agent_interface(extension: str) -> str:
    """The queue member interface of an agent extension (dialplan context `agents`)."""
    return f"Local/{extension}@agents"


def queue_name(campaign: Campaign) -> str:
    return campaign.queue_name or f"campaign-{campaign.id}"


@dataclass(frozen=True, slots=True)
class AgentView:
    user_id: int
    interface: str
    state: str
    wrap_until: datetime | None


@dataclass(frozen=True, slots=True)
class CampaignView:
    id: int
    name: str
    dial_mode: str
    dial_ratio: float
    max_lines: int
    abandon_target: float
    ring_timeout_s: int
    caller_id_number: str
    caller_id_name: str
    queue: str
    regime: str
    agents: tuple[AgentView, ...]
    answered_in_window: int
    abandoned_in_window: int
    recent: tuple[DialOutcome, ...]


@dataclass(frozen=True, slots=True)
class Dial:
    attempt_id: str
    campaign_id: int
    lead_id: int
    number: str  # what the trunk dials
    phone_e164: str


def active_campaigns(session: Session, *, node: str) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign).where(Campaign.status == "active", Campaign.dialer_node.in_(("", node)))
        )
    )


def campaign_view(session: Session, campaign: Campaign, *, now: datetime) -> CampaignView:
    """Everything the pacing controller needs to know about one campaign right now."""
    agents = tuple(
        AgentView(a.user_id, agent_interface(a.extension), a.state, a.wrap_until)
        for a in session.scalars(select(AgentSession).where(AgentSession.campaign_id == campaign.id))
    )
    since = now - ABANDON_WINDOW
    counts = dict(
        session.execute(
            select(Attempt.outcome, func.count())
            .where(
                Attempt.campaign_id == campaign.id,
                Attempt.ended_at >= since,
                Attempt.outcome.in_((Outcome.ANSWERED, Outcome.ABANDONED)),
            )
            .group_by(Attempt.outcome)
        ).all()
    )
    abandoned = counts.get(Outcome.ABANDONED, 0)
    recent_rows = session.execute(
        select(Attempt.created_at, Attempt.answered_at, Attempt.ended_at, Attempt.outcome)
        .where(Attempt.campaign_id == campaign.id, Attempt.ended_at >= now - ESTIMATE_WINDOW)
        .order_by(Attempt.created_at)
        .limit(2000)
    ).all()
    recent = tuple(
        DialOutcome(
            placed_at=created.timestamp(),
            ring_s=max(0.0, ((answered or ended) - created).total_seconds()),
            answered=outcome in (Outcome.ANSWERED, Outcome.ABANDONED),
            abandoned=outcome == Outcome.ABANDONED,
        )
        for created, answered, ended, outcome in recent_rows
        if ended is not None
    )
    return CampaignView(
        id=campaign.id,
        name=campaign.name,
        dial_mode=campaign.dial_mode,
        dial_ratio=campaign.dial_ratio,
        max_lines=campaign.max_lines,
        abandon_target=campaign.abandon_target,
        ring_timeout_s=campaign.ring_timeout_s,
        caller_id_number=campaign.caller_id_number,
        caller_id_name=campaign.caller_id_name or campaign.name,
        queue=queue_name(campaign),
        regime=campaign.regime,
        agents=agents,
        answered_in_window=counts.get(Outcome.ANSWERED, 0) + abandoned,
        abandoned_in_window=abandoned,
        recent=recent,
    )


def dial_number(e164: str, regime: str) -> str:
    """The digits the trunk dials: national form inside the campaign's country, 00-international outside."""
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164.lstrip("+")
    if phonenumbers.region_code_for_number(parsed) == regime:
        return (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            .replace(" ", "")
            .replace("-", "")
        )
    return "00" + e164.lstrip("+")


def campaign_policy(campaign: Campaign) -> CampaignPolicy:
    """The compliance policy of a campaign (shared by the engine and preview mode)."""
    # Consent: the CN profile would require recorded consent for every lead; our first users call
    # businesses from qualified B2B lists, so consent is a campaign choice and refusal is enforced
    # through the DNC rules (a do-not-call disposition blocks the number in every campaign at once).
    windows = {k: v for k, v in (campaign.calling_windows or {}).items() if k != "require_consent"}
    return CampaignPolicy.for_regime(
        campaign.regime,
        caller_id=campaign.caller_id_number,
        calling_windows=windows or None,
        retry_rules=campaign.retry_rules or None,
        max_attempts=campaign.max_attempts,
        require_consent=bool((campaign.calling_windows or {}).get("require_consent", False)),
    )


def _zones(lead: Lead) -> tuple[str, ...]:
    # Every zone the number may be in (US toll-free spans dozens): the window must be open in all.
    return number_zones(lead.phone_e164, lead.timezone)


def contact_history(
    session: Session, phones: list[str], *, now: datetime
) -> tuple[dict[str, list[datetime]], dict[str, datetime]]:
    """Recent customer contacts (any campaign, any agent) and the last abandon, per number."""
    contacts: dict[str, list[datetime]] = {}
    abandons: dict[str, datetime] = {}
    if not phones:
        return contacts, abandons
    rows = session.execute(
        select(Attempt.phone_e164, Attempt.outcome, Attempt.ended_at).where(
            Attempt.phone_e164.in_(phones),
            Attempt.ended_at >= now - timedelta(days=7),
            Attempt.outcome.in_((Outcome.ANSWERED, Outcome.ABANDONED)),
        )
    ).all()
    for phone, outcome, ended in rows:
        if ended is None:
            continue
        contacts.setdefault(phone, []).append(ended)
        if outcome == Outcome.ABANDONED and (phone not in abandons or ended > abandons[phone]):
            abandons[phone] = ended
    return contacts, abandons


def lead_facts(lead: Lead, contacts: dict[str, list[datetime]], abandons: dict[str, datetime]) -> LeadFacts:
    """What the compliance rules need to know about a reserved lead."""
    return LeadFacts(
        phone_e164=lead.phone_e164,
        timezones=_zones(lead),
        # reserve_leads marked it dialing; the compliance rules judge the status it had.
        status="callback" if lead.next_call_at is not None and lead.owner_user_id else "new",
        attempts=lead.attempts,
        last_attempt_at=lead.last_attempt_at,
        last_outcome=lead.last_outcome,
        contacts=tuple(contacts.get(lead.phone_e164, ())),
        last_abandon_at=abandons.get(lead.phone_e164),
    )


def reserve_dials(
    session: Session, campaign: Campaign, *, count: int, now: datetime, node: str, new_id: object
) -> list[Dial]:
    """Reserve up to `count` dialable leads, write their ledger rows, and log every compliance skip."""
    if count <= 0:
        return []
    policy = campaign_policy(campaign)
    dials: list[Dial] = []
    skipped: list[int] = []
    for _ in range(5):  # a few rounds so skipped leads don't starve the tick
        leads = reserve_leads(
            session, campaign_id=campaign.id, limit=count - len(dials), now=now, exclude_ids=skipped
        )
        if not leads:
            break
        contacts, abandons = contact_history(session, [lead.phone_e164 for lead in leads], now=now)
        is_dnc = dnc_matcher(
            session, campaign_id=campaign.id, now=now, numbers=(lead.phone_e164 for lead in leads)
        )
        for lead in leads:
            facts = lead_facts(lead, contacts, abandons)
            verdict = check_dialable(
                facts, policy, now, dnc_hit=is_dnc(lead.phone_e164), caller_id=campaign.caller_id_number
            )
            if not verdict.allowed:
                skipped.append(lead.id)
                skip_lead(lead, verdict, now)
                continue
            attempt_id = str(new_id())  # type: ignore[operator]
            open_attempt(
                session, lead, dialer_node=node, now=now, action_id=attempt_id, attempt_id=attempt_id
            )
            dials.append(
                Dial(
                    attempt_id,
                    campaign.id,
                    lead.id,
                    dial_number(lead.phone_e164, campaign.regime),
                    lead.phone_e164,
                )
            )
        if len(dials) >= count:
            break
    return dials


def skip_lead(lead: Lead, verdict: object, now: datetime) -> None:
    """Park a lead the compliance check refused, logging why (every skip is logged with its reason)."""
    reasons = getattr(verdict, "reasons", ())
    codes = [str(r.code) for r in reasons]
    log.info("lead %s skipped: %s", lead.id, "; ".join(f"{r.code}: {r.detail}" for r in reasons))
    permanent = {"dnc", "refused_consent", "max_attempts", "lead_closed", "no_caller_id"}
    if "dnc" in codes:
        lead.status = "dnc"
    elif permanent & set(codes) and "no_caller_id" not in codes:
        lead.status = "done"
    else:
        retry_at = [r.retry_at for r in reasons if r.retry_at is not None]
        lead.status = "retry"
        lead.next_call_at = max(retry_at) if retry_at else now + timedelta(minutes=10)
    lead.last_outcome = "skipped:" + ",".join(codes)


@dataclass(frozen=True, slots=True)
class PreviewDial:
    dial: Dial
    agent_interface: str


def claim_preview_dials(session: Session, campaign: Campaign, *, node: str) -> list[PreviewDial]:
    """Preview dials agents asked for: this node takes them (state originating) to send them now."""
    rows = session.scalars(
        select(Attempt)
        .where(Attempt.campaign_id == campaign.id, Attempt.state == PREVIEW_REQUESTED)
        .with_for_update(skip_locked=True)
    )
    claimed = []
    for attempt in rows:
        agent = session.get(AgentSession, attempt.agent_user_id) if attempt.agent_user_id else None
        if agent is None or agent.attempt_id != attempt.id:
            attempt.state, attempt.outcome = "ended", "cancelled"  # the agent moved on meanwhile
            continue
        attempt.state = "originating"
        attempt.dialer_node = node
        number = dial_number(attempt.phone_e164, campaign.regime)
        dial = Dial(attempt.id, campaign.id, attempt.lead_id, number, attempt.phone_e164)
        claimed.append(PreviewDial(dial, agent_interface(agent.extension)))
    return claimed


def mark_connected(session: Session, attempt_id: str, *, interface: str, now: datetime) -> int | None:
    """The customer reached an agent: attempt, agent session and lead learn it; returns the agent id."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None:
        return None
    attempt.bridged_at = now
    agent = session.scalar(
        select(AgentSession).where(
            AgentSession.campaign_id == attempt.campaign_id,
            AgentSession.extension == interface.removeprefix("Local/").split("@", 1)[0],
        )
    )
    if agent is None:
        return None
    attempt.agent_user_id = agent.user_id
    agent.state = "on_call"
    agent.state_since = now
    agent.attempt_id = attempt_id
    agent.lead_id = attempt.lead_id
    return agent.user_id


def mark_answered(session: Session, attempt_id: str, *, now: datetime) -> None:
    attempt = session.get(Attempt, attempt_id)
    if attempt is not None and attempt.answered_at is None:
        attempt.answered_at = now
        attempt.state = "answered"


def mark_agent_done(session: Session, attempt_id: str, *, now: datetime, wrap_s: float) -> None:
    """The call left the agent: wrap-up starts (the agent's disposition ends it)."""
    agent = session.scalar(select(AgentSession).where(AgentSession.attempt_id == attempt_id))
    if agent is not None and agent.state == "on_call":
        agent.state = "wrap_up"
        agent.state_since = now
        agent.wrap_until = now + timedelta(seconds=wrap_s)


def record_finished(session: Session, done: AttemptFinished, *, now: datetime) -> Attempt | None:
    """Close the ledger row, write the CDR row (and recording row), and schedule the lead's next step."""
    attempt = session.get(Attempt, done.attempt_id)
    if attempt is None or attempt.state == "ended":
        return attempt  # already closed (duplicate update after a restart): idempotent
    attempt.state = "ended"
    attempt.outcome = done.outcome.value
    attempt.hangup_cause = done.hangup_cause
    attempt.ended_at = now
    attempt.channel = done.channel[:128]
    attempt.uniqueid = done.uniqueid[:64]
    attempt.linkedid = done.linkedid[:64]
    if done.answered_at is not None and attempt.answered_at is None:
        attempt.answered_at = now - timedelta(seconds=max(0.0, done.at - done.answered_at))
    talk_start = done.connected_at if done.connected_at is not None else done.answered_at
    call = Call(
        direction="outbound",
        attempt_id=attempt.id,
        campaign_id=attempt.campaign_id,
        lead_id=attempt.lead_id,
        agent_user_id=attempt.agent_user_id,
        to_number=attempt.phone_e164,
        uniqueid=attempt.uniqueid,
        linkedid=attempt.linkedid,
        started_at=attempt.created_at,
        answered_at=attempt.answered_at,
        ended_at=now,
        ring_s=max(0.0, ((attempt.answered_at or now) - _aware(attempt.created_at)).total_seconds()),
        talk_s=max(0.0, done.at - talk_start) if talk_start is not None else 0.0,
        hangup_cause=done.hangup_cause,
        outcome=done.outcome.value,
    )
    session.add(call)
    campaign = session.get(Campaign, attempt.campaign_id)
    from_number = campaign.caller_id_number if campaign else ""
    call.from_number = from_number
    if done.recording and done.outcome in (Outcome.ANSWERED, Outcome.MACHINE):
        session.flush()
        # MIXMONITOR_FILENAME may be a full PBX path (/var/spool/asterisk/monitor/..., fixture
        # originate_answered); the worker reads its own spool directory, so only the name is kept.
        name = PurePosixPath(done.recording).name[:256]
        session.add(Recording(call_id=call.id, attempt_id=attempt.id, storage_key=name))
    lead = session.get(Lead, attempt.lead_id)
    if lead is None or campaign is None:
        return attempt
    lead.last_outcome = done.outcome.value
    if attempt.agent_user_id is not None and done.outcome is Outcome.ANSWERED:
        lead.status = "wrapup"  # the agent's disposition decides what happens next
        return attempt
    # ERROR (the Originate itself was refused) is ours or the PBX's fault, never the callee's: retry
    # it like congestion.
    code = done.outcome.value if done.outcome.value in OUTCOMES else "congestion"
    policy = campaign_policy(campaign)
    step = next_step(
        code,
        now=now,
        rules=retry_rules_from_json(campaign.retry_rules or None, regime=campaign.regime),
        attempts=lead.attempts,
        max_attempts=campaign.max_attempts,
        windows=policy.windows,
        timezones=_zones(lead),
    )
    lead.status = step.lead_status
    lead.next_call_at = step.next_call_at
    return attempt


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
