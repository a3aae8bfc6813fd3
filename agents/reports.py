"""Supervisor numbers: the wallboard and per-agent daily results (with CSV export).

Days are the centre's local days (`tz`, default Asia/Shanghai like the QA trends). Definitions:
- dialed today: attempts created today; answered today: attempts answered by a live person today
  (outcome answered or abandoned, or still in flight with answered_at); answer rate: attempts ended
  today with a live answer ÷ attempts ended today.
- abandon: live-answered vs abandoned attempts over the rolling 30 days (DESIGN §4), judged with
  dialer.compliance.rules.abandon_budget against the campaign's target capped at 3 %.
- agent day: calls = calls (CDR rows) the agent handled; contacts = those answered; talk time = their
  talk_s; appointments = the agent's `appointment` dispositions; appointment rate = appointments ÷ contacts.
Targets are optional per-agent-per-day numbers given with the request (`target_calls`,
`target_appointments`): the campaign has no target column yet, and SEEDS' plans are per agent anyway.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from agents.models import AgentSession
from agents.repository import user_names
from agents.schemas import AbandonOut, AgentDayRow, WallboardOut
from core.errors import NotFound, ValidationFailed
from dialer.compliance.rules import ABANDON_WINDOW, abandon_budget, effective_abandon_target
from dialer.lead_import import spreadsheet_safe
from dialer.models import Attempt, Call, Campaign, Disposition, Lead

DEFAULT_TZ = "Asia/Shanghai"
MAX_REPORT_DAYS = 93
LIVE_OUTCOMES = ("answered", "abandoned")
CSV_COLUMNS = (
    "day",
    "agent_user_id",
    "agent_name",
    "calls",
    "contacts",
    "talk_s",
    "appointments",
    "appointment_rate",
    "target_calls",
    "target_appointments",
    "calls_vs_target",
    "appointments_vs_target",
)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(f"unknown time zone {name!r}", details={"field": "tz"}) from exc


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)


def wallboard(
    session: Session, campaign_id: int, *, now: datetime, tz_name: str = DEFAULT_TZ
) -> WallboardOut:
    """The campaign at a glance: agents by state, calls in flight, today's results, abandon budget."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    tz = zone(tz_name)
    today = now.astimezone(tz).date()
    start, end = day_bounds(today, tz)
    states = Counter(
        dict(
            session.execute(
                select(AgentSession.state, func.count())
                .where(AgentSession.campaign_id == campaign_id, AgentSession.state != "logged_out")
                .group_by(AgentSession.state)
            ).all()
        )
    )
    in_campaign = Attempt.campaign_id == campaign_id
    in_flight = session.scalar(select(func.count()).where(in_campaign, Attempt.state != "ended")) or 0
    dialed = (
        session.scalar(
            select(func.count()).where(in_campaign, Attempt.created_at >= start, Attempt.created_at < end)
        )
        or 0
    )
    ended_today = select(func.count()).where(in_campaign, Attempt.ended_at >= start, Attempt.ended_at < end)
    ended = session.scalar(ended_today) or 0
    ended_live = session.scalar(ended_today.where(Attempt.outcome.in_(LIVE_OUTCOMES))) or 0
    answered = (
        session.scalar(
            select(func.count()).where(
                in_campaign,
                Attempt.answered_at >= start,
                Attempt.answered_at < end,
                or_(Attempt.outcome.in_(LIVE_OUTCOMES), Attempt.state != "ended"),
            )
        )
        or 0
    )
    appointments = (
        session.scalar(
            select(func.count())
            .select_from(Disposition)
            .join(Lead, Lead.id == Disposition.lead_id)
            .where(
                Lead.campaign_id == campaign_id,
                Disposition.code == "appointment",
                Disposition.created_at >= start,
                Disposition.created_at < end,
            )
        )
        or 0
    )
    live = dict(
        session.execute(
            select(Attempt.outcome, func.count())
            .where(in_campaign, Attempt.ended_at >= now - ABANDON_WINDOW, Attempt.outcome.in_(LIVE_OUTCOMES))
            .group_by(Attempt.outcome)
        ).all()
    )
    abandoned = live.get("abandoned", 0)
    live_answered = live.get("answered", 0) + abandoned
    target = effective_abandon_target(campaign.regime, campaign.abandon_target)
    budget = abandon_budget(live_answered, abandoned, target)
    return WallboardOut(
        campaign_id=campaign.id,
        campaign_name=campaign.name,
        at=now,
        day=today,
        timezone=tz_name,
        agents_by_state=dict(sorted(states.items())),
        agents_logged_in=sum(states.values()),
        calls_in_flight=in_flight,
        dialed_today=dialed,
        answered_today=answered,
        answer_rate_today=round(ended_live / ended, 4) if ended else 0.0,
        appointments_today=appointments,
        abandon=AbandonOut(
            window_days=ABANDON_WINDOW.days,
            answered=live_answered,
            abandoned=abandoned,
            rate=round(budget.rate, 4),
            target=target,
            remaining_abandons=budget.remaining_abandons,
            exceeded=budget.exceeded,
        ),
    )


@dataclass
class _Tally:
    calls: int = 0
    contacts: int = 0
    talk_s: float = 0.0
    appointments: int = 0


def _ratio(part: int, whole: int | None) -> float | None:
    return round(part / whole, 4) if whole else None


def agent_days(
    session: Session,
    *,
    first: date,
    last: date,
    tz_name: str = DEFAULT_TZ,
    campaign_id: int | None = None,
    target_calls: int | None = None,
    target_appointments: int | None = None,
) -> list[AgentDayRow]:
    """Per agent per local day from `first` to `last` inclusive, ordered by day then agent name."""
    if last < first:
        raise ValidationFailed("`to` is before `from`", details={"field": "to"})
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise ValidationFailed(f"at most {MAX_REPORT_DAYS} days per report", details={"field": "to"})
    tz = zone(tz_name)
    start, _ = day_bounds(first, tz)
    _, end = day_bounds(last, tz)
    calls = select(Call.agent_user_id, Call.started_at, Call.answered_at, Call.talk_s).where(
        Call.agent_user_id.is_not(None), Call.started_at >= start, Call.started_at < end
    )
    appts = select(Disposition.agent_user_id, Disposition.created_at).where(
        Disposition.agent_user_id.is_not(None),
        Disposition.code == "appointment",
        Disposition.created_at >= start,
        Disposition.created_at < end,
    )
    if campaign_id is not None:
        calls = calls.where(Call.campaign_id == campaign_id)
        appts = appts.join(Lead, Lead.id == Disposition.lead_id).where(Lead.campaign_id == campaign_id)
    tallies: defaultdict[tuple[date, int], _Tally] = defaultdict(_Tally)
    for agent, started, answered_at, talk_s in session.execute(calls):
        if agent is None:
            continue
        tally = tallies[(started.astimezone(tz).date(), agent)]
        tally.calls += 1
        tally.contacts += answered_at is not None
        tally.talk_s += talk_s or 0.0
    for agent, created in session.execute(appts):
        if agent is None:
            continue
        tallies[(created.astimezone(tz).date(), agent)].appointments += 1
    names = user_names(session, (agent for _, agent in tallies))
    rows = [
        AgentDayRow(
            day=day,
            agent_user_id=agent,
            agent_name=names.get(agent, ""),
            calls=t.calls,
            contacts=t.contacts,
            talk_s=round(t.talk_s, 1),
            appointments=t.appointments,
            appointment_rate=_ratio(t.appointments, t.contacts) or 0.0,
            target_calls=target_calls,
            target_appointments=target_appointments,
            calls_vs_target=_ratio(t.calls, target_calls),
            appointments_vs_target=_ratio(t.appointments, target_appointments),
        )
        for (day, agent), t in tallies.items()
    ]
    return sorted(rows, key=lambda r: (r.day, r.agent_name, r.agent_user_id))


def to_csv(rows: Iterable[AgentDayRow]) -> str:
    """CSV for spreadsheets: text cells that start like a formula get a leading apostrophe (OWASP)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow(
            [
                spreadsheet_safe(value) if isinstance(value, str) else "" if value is None else value
                for value in (data[col] for col in CSV_COLUMNS)
            ]
        )
    return out.getvalue()
