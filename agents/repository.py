"""Agent-workspace reads: lead cards, contact history, scripts, callbacks and live agents.

Read-only queries plus the small view assembly shared by the routes and the live event feed; nothing
here writes or commits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from agents.models import AgentSession
from agents.schemas import (
    AgentCallbackOut,
    AgentSessionOut,
    AttemptRow,
    BranchOut,
    CallbackRow,
    CallRow,
    CampaignBrief,
    ContactOut,
    ContactWarning,
    CurrentCallOut,
    DispositionRow,
    LeadCard,
    LeadHistoryOut,
    LiveAgentOut,
    RecommendationOut,
    StageOut,
)
from agents.script_samples import load_sample
from agents.scripts import RenderContext, ScriptTree, parse_script, render_stage
from core.errors import NotFound, ValidationFailed
from core.models import User
from dialer.models import Attempt, Call, Callback, Campaign, Disposition, Lead, Script

WARN_WINDOW = timedelta(hours=24)  # SEEDS: three identical calls in half a day
OTHER_CAMPAIGNS_WINDOW = timedelta(days=30)
HISTORY_LIMIT = 200


def user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name, User.username).where(User.id.in_(wanted)))
    return {uid: display or username for uid, display, username in rows}


def agent_session(session: Session, user_id: int) -> AgentSession:
    """The agent's live session with its campaign (every agent request starts here)."""
    row = session.get(AgentSession, user_id, options=[joinedload(AgentSession.campaign)])
    if row is None or row.state == "logged_out":
        raise NotFound("not logged in to a campaign")
    return row


def get_lead(session: Session, lead_id: int) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    return lead


# --- contacts and history -------------------------------------------------------------------------


def _contacts(
    session: Session, phone_e164: str, *, since: datetime, limit: int = HISTORY_LIMIT
) -> list[tuple[ContactOut, datetime]]:
    """Attempts on this number (any campaign) that reached an agent since `since`, newest first, each
    with the time the attempt was made."""
    rows = session.execute(
        select(
            Attempt.created_at,
            Attempt.answered_at,
            Attempt.bridged_at,
            Attempt.agent_user_id,
            Attempt.campaign_id,
            Attempt.lead_id,
            Attempt.outcome,
            Attempt.state,
            Campaign.name,
        )
        .join(Campaign, Campaign.id == Attempt.campaign_id)
        .where(
            Attempt.phone_e164 == phone_e164,
            Attempt.agent_user_id.is_not(None),
            Attempt.created_at >= since,
        )
        .order_by(Attempt.created_at.desc())
        .limit(limit)
    ).all()
    names = user_names(session, (row.agent_user_id for row in rows))
    return [
        (
            ContactOut(
                at=row.bridged_at or row.answered_at or row.created_at,
                agent_user_id=row.agent_user_id,
                agent_name=names.get(row.agent_user_id or 0, ""),
                campaign_id=row.campaign_id,
                campaign_name=row.name,
                lead_id=row.lead_id,
                outcome=row.outcome or row.state,
            ),
            row.created_at,
        )
        for row in rows
    ]


def _warning(contacts: Iterable[ContactOut], viewer_id: int | None) -> ContactWarning | None:
    others = [c for c in contacts if c.agent_user_id != viewer_id]
    if not others:
        return None
    who = ", ".join(sorted({c.agent_name or f"#{c.agent_user_id}" for c in others}))
    hours = int(WARN_WINDOW.total_seconds() // 3600)
    return ContactWarning(
        message=f"{len(others)} contact(s) with this number in the last {hours} h by {who}",
        hours=hours,
        contacts=others,
    )


def contact_warning(
    session: Session, lead: Lead, *, viewer_id: int | None, now: datetime
) -> ContactWarning | None:
    """A warning when another agent reached this number in the last 24 hours."""
    return _warning((c for c, _ in _contacts(session, lead.phone_e164, since=now - WARN_WINDOW)), viewer_id)


def lead_history(session: Session, lead: Lead, *, viewer_id: int | None, now: datetime) -> LeadHistoryOut:
    """Everything that happened to a lead, newest first, with agent names."""
    attempts = list(
        session.scalars(
            select(Attempt)
            .where(Attempt.lead_id == lead.id)
            .order_by(Attempt.created_at.desc())
            .limit(HISTORY_LIMIT)
        )
    )
    calls = list(
        session.scalars(
            select(Call).where(Call.lead_id == lead.id).order_by(Call.started_at.desc()).limit(HISTORY_LIMIT)
        )
    )
    dispositions = list(
        session.scalars(
            select(Disposition)
            .where(Disposition.lead_id == lead.id)
            .order_by(Disposition.created_at.desc(), Disposition.id.desc())
            .limit(HISTORY_LIMIT)
        )
    )
    callbacks = list(
        session.scalars(select(Callback).where(Callback.lead_id == lead.id).order_by(Callback.due_at.desc()))
    )
    names = user_names(
        session,
        [a.agent_user_id for a in attempts]
        + [c.agent_user_id for c in calls]
        + [d.agent_user_id for d in dispositions]
        + [c.owner_user_id for c in callbacks],
    )

    def name(uid: int | None) -> str:
        return names.get(uid, "") if uid is not None else ""

    # One read serves both the other campaigns' contacts (30 days) and the 24-hour warning. Twice the
    # list's limit leaves room for this campaign's own rows: frequency caps keep any number far below.
    recent = _contacts(session, lead.phone_e164, since=now - OTHER_CAMPAIGNS_WINDOW, limit=2 * HISTORY_LIMIT)

    return LeadHistoryOut(
        lead=LeadCard.model_validate(lead),
        attempts=[
            AttemptRow(
                id=a.id,
                campaign_id=a.campaign_id,
                state=a.state,
                outcome=a.outcome,
                agent_user_id=a.agent_user_id,
                agent_name=name(a.agent_user_id),
                created_at=a.created_at,
                answered_at=a.answered_at,
                ended_at=a.ended_at,
            )
            for a in attempts
        ],
        calls=[
            CallRow(
                id=c.id,
                attempt_id=c.attempt_id,
                direction=c.direction,
                agent_user_id=c.agent_user_id,
                agent_name=name(c.agent_user_id),
                started_at=c.started_at,
                answered_at=c.answered_at,
                talk_s=c.talk_s,
                outcome=c.outcome,
                disposition_code=c.disposition_code,
            )
            for c in calls
        ],
        dispositions=[
            DispositionRow(
                id=d.id,
                code=d.code,
                notes=d.notes,
                grade=d.grade,
                details=d.details or {},
                agent_user_id=d.agent_user_id,
                agent_name=name(d.agent_user_id),
                created_at=d.created_at,
            )
            for d in dispositions
        ],
        callbacks=[
            CallbackRow(
                id=c.id,
                lead_id=c.lead_id,
                campaign_id=c.campaign_id,
                due_at=c.due_at,
                owner_user_id=c.owner_user_id,
                owner_name=name(c.owner_user_id),
                note=c.note,
                done_at=c.done_at,
            )
            for c in callbacks
        ],
        other_campaigns=[c for c, _ in recent if c.campaign_id != lead.campaign_id][:HISTORY_LIMIT],
        warning=_warning((c for c, made in recent if made >= now - WARN_WINDOW), viewer_id),
    )


# --- scripts ----------------------------------------------------------------------------------------


def load_script(
    session: Session, campaign_id: int, language: str, *, default_language: str
) -> tuple[ScriptTree, Script | None, str]:
    """The campaign's newest published script in `language`, else the sample script; and its language."""
    row = session.scalar(
        select(Script)
        .where(Script.campaign_id == campaign_id, Script.is_published.is_(True), Script.language == language)
        .order_by(Script.version.desc())
        .limit(1)
    )
    if row is not None:
        return parse_script(row.body), row, row.language
    try:
        return _sample_tree(language)
    except ValidationFailed:
        return _sample_tree(default_language)


@functools.lru_cache(maxsize=8)
def _sample_tree(language: str) -> tuple[ScriptTree, None, str]:
    """The built-in sample, parsed once per process (it never changes; parsing took ~1 ms a request)."""
    body = load_sample(language)
    return parse_script(body), None, str(body.get("language") or language)


def rendered_stage(
    session: Session,
    *,
    campaign: Campaign,
    user: User,
    lead: Lead | None,
    stage_id: str | None,
    default_language: str,
) -> StageOut:
    """A stage (the start stage when `stage_id` is None) rendered for the lead, with its recommendations."""
    tree, row, language = load_script(session, campaign.id, user.language, default_language=default_language)
    context = RenderContext(
        lead=lead, agent_name=user.display_name or user.username, campaign=campaign, language=language
    )
    stage = render_stage(tree, stage_id or tree.start, context)
    return StageOut(
        id=stage.id,
        kind=stage.kind,
        title=stage.title,
        text=stage.text,
        hints=list(stage.hints),
        branches=[BranchOut(label=b.label, to=b.to) for b in stage.branches],
        recommended=[RecommendationOut(to=r.to, title=r.title, why=r.why) for r in stage.recommended],
        objection=stage.objection,
        start=tree.start,
        source="campaign" if row is not None else "sample",
        script_id=row.id if row is not None else None,
        script_version=row.version if row is not None else None,
        language=language,
    )


# --- the agent's own session ------------------------------------------------------------------------


def current_call(
    session: Session, row: AgentSession, *, user: User, now: datetime, default_language: str
) -> CurrentCallOut | None:
    """The screen pop: the lead on the agent's call (or reserved preview lead) and the script start."""
    if row.lead_id is None:
        return None
    lead = session.get(Lead, row.lead_id)
    campaign = session.get(Campaign, row.campaign_id)
    if lead is None or campaign is None:
        return None
    return CurrentCallOut(
        attempt_id=row.attempt_id,
        lead=LeadCard.model_validate(lead),
        warning=contact_warning(session, lead, viewer_id=user.id, now=now),
        script=rendered_stage(
            session, campaign=campaign, user=user, lead=lead, stage_id=None, default_language=default_language
        ),
    )


def session_view(
    session: Session, row: AgentSession, *, now: datetime, default_language: str
) -> AgentSessionOut:
    campaign = session.get(Campaign, row.campaign_id)
    user = session.get(User, row.user_id)
    if campaign is None or user is None:
        raise NotFound("the session's campaign no longer exists")
    wrap_left = max(0.0, (row.wrap_until - now).total_seconds()) if row.wrap_until is not None else None
    return AgentSessionOut(
        user_id=row.user_id,
        campaign=CampaignBrief(id=campaign.id, name=campaign.name, dial_mode=campaign.dial_mode),
        extension=row.extension,
        state=row.state,
        pause_reason=row.pause_reason,
        state_since=row.state_since,
        seconds_in_state=max(0.0, (now - row.state_since).total_seconds()),
        wrap_until=row.wrap_until,
        wrap_remaining_s=wrap_left if row.state == "wrap_up" else None,
        logged_in_at=row.logged_in_at,
        call=current_call(session, row, user=user, now=now, default_language=default_language),
    )


def callbacks_for(
    session: Session, *, user_id: int, campaign_id: int | None, now: datetime, limit: int, offset: int
) -> tuple[list[AgentCallbackOut], int]:
    """Open callbacks: the user's own (any campaign) and unowned ones of `campaign_id`, due first."""
    mine = Callback.owner_user_id == user_id
    who = (
        or_(mine, (Callback.owner_user_id.is_(None)) & (Callback.campaign_id == campaign_id))
        if campaign_id
        else mine
    )
    base = (
        select(Callback, Lead).join(Lead, Lead.id == Callback.lead_id).where(Callback.done_at.is_(None), who)
    )
    total = len(session.execute(base.with_only_columns(Callback.id)).all())
    rows = session.execute(base.order_by(Callback.due_at, Callback.id).limit(limit).offset(offset)).all()
    names = user_names(session, (cb.owner_user_id for cb, _ in rows))
    return [
        AgentCallbackOut(
            id=cb.id,
            lead_id=cb.lead_id,
            campaign_id=cb.campaign_id,
            due_at=cb.due_at,
            overdue=cb.due_at <= now,
            personal=cb.owner_user_id is not None,
            owner_user_id=cb.owner_user_id,
            owner_name=names.get(cb.owner_user_id or 0, ""),
            note=cb.note,
            lead_name=lead.name,
            lead_company=lead.company,
            lead_phone=lead.phone_e164,
        )
        for cb, lead in rows
    ], total


# --- supervisors ------------------------------------------------------------------------------------


def live_agents(session: Session, *, campaign_id: int | None, now: datetime) -> list[LiveAgentOut]:
    """Logged-in agents with their state, time in state and current lead."""
    query = (
        select(AgentSession, User, Campaign, Lead)
        .join(User, User.id == AgentSession.user_id)
        .join(Campaign, Campaign.id == AgentSession.campaign_id)
        .outerjoin(Lead, Lead.id == AgentSession.lead_id)
        .where(AgentSession.state != "logged_out")
        .order_by(Campaign.name, User.username)
    )
    if campaign_id is not None:
        query = query.where(AgentSession.campaign_id == campaign_id)
    return [
        LiveAgentOut(
            user_id=row.user_id,
            username=user.username,
            display_name=user.display_name,
            campaign_id=campaign.id,
            campaign_name=campaign.name,
            extension=row.extension,
            state=row.state,
            pause_reason=row.pause_reason,
            since=row.state_since,
            seconds_in_state=max(0.0, (now - row.state_since).total_seconds()),
            wrap_until=row.wrap_until,
            attempt_id=row.attempt_id,
            lead_id=row.lead_id,
            lead_name=lead.name if lead is not None else "",
            lead_company=lead.company if lead is not None else "",
        )
        for row, user, campaign, lead in session.execute(query).all()
    ]
