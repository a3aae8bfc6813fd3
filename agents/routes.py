"""HTTP in: the agent workspace (session, state, script, dispositions, preview, callbacks), lead history,
supervisor live views, live events (SSE) and agent reports.

Agents act on their own session only; supervisors and admins may log in and work as agents too. The
script trail has no column on AgentSession: POST /agent/script/visit stamps the visit with server time
and returns the whole trail, the client keeps it and sends it back with the disposition, where it is
validated again (ScriptTrail.from_json) and stored in Disposition.script_trail.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from agents import live, reports, repository, service
from agents.models import AgentSession
from agents.schemas import (
    AgentCallbackOut,
    AgentDayRow,
    AgentSessionOut,
    DispositionIn,
    DispositionOut,
    LeadHistoryOut,
    LiveAgentOut,
    LoginIn,
    PreviewDialOut,
    PreviewOut,
    PreviewSkipIn,
    ScriptVisitIn,
    ScriptVisitOut,
    StageOut,
    StateIn,
    VisitOut,
    WallboardOut,
)
from agents.scripts import ScriptTrail
from api.deps import (
    ClockDep,
    PaginationDep,
    Principal,
    RoleGuard,
    SessionDep,
    SettingsDep,
    SupervisorDep,
)
from api.schemas import Page
from core.errors import NotFound, PermissionDenied
from core.models import Role, User
from dialer.models import Campaign, Lead

router = APIRouter(tags=["agent workspace"])

# Supervisors and admins can sit in for an agent; QA only reviews.
workspace = RoleGuard(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
WorkspaceDep = Annotated[Principal, Depends(workspace)]
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
PollMs = Annotated[int, Query(ge=50, le=10_000, description="database poll interval")]
HeartbeatS = Annotated[float, Query(ge=0.1, le=60)]
MaxEvents = Annotated[int | None, Query(ge=1, le=10_000, description="end the stream after n events")]
Tz = Annotated[str, Query(max_length=64, description="IANA zone of the centre's day")]


def _user(session: SessionDep, principal: Principal) -> User:
    """The signed-in person behind an agent request (API keys have no agent session)."""
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None:
        raise PermissionDenied("the agent workspace needs a signed-in user")
    return user


# --- session and state ------------------------------------------------------------------------------


@router.post("/agent/session", response_model=AgentSessionOut, status_code=status.HTTP_201_CREATED)
def log_in(
    body: LoginIn, principal: WorkspaceDep, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> AgentSessionOut:
    """Log in to a campaign with a phone extension; the agent starts paused (reason `login`)."""
    user = _user(session, principal)
    row = service.login(
        session, user_id=user.id, campaign_id=body.campaign_id, extension=body.extension, now=clock.now()
    )
    session.flush()
    return repository.session_view(session, row, now=clock.now(), default_language=settings.default_language)


@router.get("/agent/session", response_model=AgentSessionOut)
def get_session(
    principal: WorkspaceDep, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> AgentSessionOut:
    """State, campaign, wrap-up timer and the current call's screen pop (lead, warning, script start)."""
    row = repository.agent_session(session, _user(session, principal).id)
    return repository.session_view(session, row, now=clock.now(), default_language=settings.default_language)


@router.post("/agent/state", response_model=AgentSessionOut)
def set_state(
    body: StateIn, principal: WorkspaceDep, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> AgentSessionOut:
    user = _user(session, principal)
    row = service.set_state(session, user_id=user.id, state=body.state, reason=body.reason, now=clock.now())
    return repository.session_view(session, row, now=clock.now(), default_language=settings.default_language)


@router.post("/agent/logout", status_code=status.HTTP_204_NO_CONTENT)
def log_out(principal: WorkspaceDep, session: SessionDep, clock: ClockDep) -> None:
    service.logout(session, user_id=_user(session, principal).id, now=clock.now())


@router.post("/agent/disposition", response_model=DispositionOut, status_code=status.HTTP_201_CREATED)
def submit_disposition(
    body: DispositionIn, principal: WorkspaceDep, session: SessionDep, clock: ClockDep
) -> DispositionOut:
    """Close the current (or just finished) call: outcome, notes, grade, MAN, callback or appointment."""
    user = _user(session, principal)
    now = clock.now()
    trail = ScriptTrail.from_json(body.script_trail).to_json()
    row = repository.agent_session(session, user.id)
    if row.lead_id is not None:
        service.close_open_callbacks(session, lead_id=row.lead_id, now=now)
    details = body.details.model_dump(mode="json") if body.details is not None else None
    data = service.DispositionInput(
        code=body.code,
        notes=body.notes,
        grade=body.grade,
        man_money=body.man_money,
        man_authority=body.man_authority,
        man_need=body.man_need,
        callback_at=body.callback_at,
        callback_personal=body.callback_personal,
        details=details,
        script_trail=list(trail),
        then=body.then,
    )
    disposition = service.submit_disposition(
        session, user_id=user.id, data=data, now=now, actor=principal.actor
    )
    session.flush()
    lead = repository.get_lead(session, disposition.lead_id)
    return DispositionOut(
        id=disposition.id,
        code=disposition.code,
        lead_id=lead.id,
        attempt_id=disposition.attempt_id,
        call_id=disposition.call_id,
        created_at=disposition.created_at,
        lead_status=lead.status,
        next_call_at=lead.next_call_at,
        agent_state=row.state,
    )


# --- script -----------------------------------------------------------------------------------------


def _stage(
    session: SessionDep, principal: Principal, stage: str | None, clock: ClockDep, language: str
) -> StageOut:
    user = _user(session, principal)
    row = repository.agent_session(session, user.id)
    campaign = session.get(Campaign, row.campaign_id)
    if campaign is None:
        raise NotFound("the session's campaign no longer exists")
    lead = session.get(Lead, row.lead_id) if row.lead_id is not None else None
    return repository.rendered_stage(
        session, campaign=campaign, user=user, lead=lead, stage_id=stage, default_language=language
    )


@router.get("/agent/script", response_model=StageOut)
def get_script_stage(
    principal: WorkspaceDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    stage: Annotated[str | None, Query(max_length=64)] = None,
) -> StageOut:
    """A stage (default: the start) rendered for the current lead, with branches and recommendations."""
    return _stage(session, principal, stage, clock, settings.default_language)


@router.post("/agent/script/visit", response_model=ScriptVisitOut)
def visit_stage(
    body: ScriptVisitIn, principal: WorkspaceDep, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> ScriptVisitOut:
    """Stamp a stage visit with server time onto the client's trail (see the module docstring)."""
    rendered = _stage(session, principal, body.stage, clock, settings.default_language)
    trail = ScriptTrail.from_json(body.trail).visit(rendered.id, clock.now())
    return ScriptVisitOut(trail=[VisitOut(stage=v.stage, at=v.at) for v in trail.visits], stage=rendered)


# --- preview mode -----------------------------------------------------------------------------------


@router.get("/agent/preview/next", response_model=PreviewOut, responses={204: {"description": "no lead due"}})
def preview_next(
    principal: WorkspaceDep, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> PreviewOut | Response:
    """Reserve the next lead for this agent (never the same lead for two agents) with its history."""
    user = _user(session, principal)
    now = clock.now()
    lead = service.reserve_preview_lead(session, user_id=user.id, now=now)
    if lead is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)  # commits the compliance skips
    campaign = session.get(Campaign, lead.campaign_id)
    if campaign is None:
        raise NotFound("the lead's campaign no longer exists")
    history = repository.lead_history(session, lead, viewer_id=user.id, now=now)
    return PreviewOut(
        lead=history.lead,
        history=history,
        warning=history.warning,
        script=repository.rendered_stage(
            session,
            campaign=campaign,
            user=user,
            lead=lead,
            stage_id=None,
            default_language=settings.default_language,
        ),
    )


@router.post("/agent/preview/dial", response_model=PreviewDialOut, status_code=status.HTTP_202_ACCEPTED)
def preview_dial(principal: WorkspaceDep, session: SessionDep, clock: ClockDep) -> PreviewDialOut:
    """Ask for the reserved lead to be dialled: a ledger row the dialer engine originates."""
    attempt = service.request_preview_dial(session, user_id=_user(session, principal).id, now=clock.now())
    return PreviewDialOut(attempt_id=attempt.id, lead_id=attempt.lead_id, state=attempt.state)


@router.post("/agent/preview/skip", status_code=status.HTTP_204_NO_CONTENT)
def preview_skip(
    principal: WorkspaceDep, session: SessionDep, clock: ClockDep, body: PreviewSkipIn | None = None
) -> None:
    delay = timedelta(minutes=(body or PreviewSkipIn()).delay_minutes)
    service.skip_preview_lead(session, user_id=_user(session, principal).id, now=clock.now(), delay=delay)


# --- history and callbacks --------------------------------------------------------------------------


@router.get("/leads/{lead_id}/history", response_model=LeadHistoryOut)
def lead_history(
    lead_id: int, principal: WorkspaceDep, session: SessionDep, clock: ClockDep
) -> LeadHistoryOut:
    """Attempts, calls, dispositions and callbacks; agents see leads of their current campaign only."""
    lead = repository.get_lead(session, lead_id)
    if principal.role is Role.AGENT:
        row = repository.agent_session(session, _user(session, principal).id)
        if row.campaign_id != lead.campaign_id:
            raise NotFound(f"lead {lead_id} not found")  # no hint that it exists elsewhere
    return repository.lead_history(session, lead, viewer_id=principal.user_id, now=clock.now())


@router.get("/agent/callbacks", response_model=Page[AgentCallbackOut])
def my_callbacks(
    principal: WorkspaceDep, session: SessionDep, clock: ClockDep, page: PaginationDep
) -> Page[AgentCallbackOut]:
    """Open callbacks: mine (any campaign) and unassigned ones of my current campaign, due first."""
    user = _user(session, principal)
    row = session.get(AgentSession, user.id)
    campaign_id = row.campaign_id if row is not None and row.state != "logged_out" else None
    items, total = repository.callbacks_for(
        session,
        user_id=user.id,
        campaign_id=campaign_id,
        now=clock.now(),
        limit=page.limit,
        offset=page.offset,
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


# --- supervisors ------------------------------------------------------------------------------------


@router.get("/supervisor/agents", response_model=list[LiveAgentOut])
def live_agents(
    _: SupervisorDep, session: SessionDep, clock: ClockDep, campaign_id: int | None = None
) -> list[LiveAgentOut]:
    return repository.live_agents(session, campaign_id=campaign_id, now=clock.now())


@router.get("/supervisor/wallboard", response_model=WallboardOut)
def wallboard(
    _: SupervisorDep, session: SessionDep, clock: ClockDep, campaign_id: int, tz: Tz = reports.DEFAULT_TZ
) -> WallboardOut:
    return reports.wallboard(session, campaign_id, now=clock.now(), tz_name=tz)


@router.get("/reports/agents", response_model=list[AgentDayRow])
def agent_report(
    _: SupervisorDep,
    session: SessionDep,
    clock: ClockDep,
    first: Annotated[date | None, Query(alias="from", description="first local day (default today)")] = None,
    last: Annotated[
        date | None, Query(alias="to", description="last local day, inclusive (default today)")
    ] = None,
    campaign_id: int | None = None,
    tz: Tz = reports.DEFAULT_TZ,
    target_calls: Annotated[int | None, Query(ge=1)] = None,
    target_appointments: Annotated[int | None, Query(ge=1)] = None,
    format: Literal["json", "csv"] = "json",
) -> list[AgentDayRow] | PlainTextResponse:
    """Per agent per day: calls, contacts, talk time, appointments and rate, against optional targets."""
    today = clock.now().astimezone(reports.zone(tz)).date()
    last = last or (max(first, today) if first is not None else today)
    rows = reports.agent_days(
        session,
        first=first or last,
        last=last,
        tz_name=tz,
        campaign_id=campaign_id,
        target_calls=target_calls,
        target_appointments=target_appointments,
    )
    if format == "csv":
        return PlainTextResponse(
            reports.to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="agent-report.csv"'},
        )
    return rows


# --- live events ------------------------------------------------------------------------------------


@router.get("/agent/events", response_class=StreamingResponse)
def agent_events(
    request: Request,
    principal: WorkspaceDep,
    session: SessionDep,
    settings: SettingsDep,
    poll_ms: PollMs = 500,
    heartbeat_s: HeartbeatS = 15.0,
    max_events: MaxEvents = None,
) -> StreamingResponse:
    """Server-Sent Events: state, screen_pop, call_ended (see agents.live)."""
    user_id = repository.agent_session(session, _user(session, principal).id).user_id
    session.close()  # give the pooled connection back: the stream may last hours and polls on its own
    feed = live.agent_feed(
        factory=request.app.state.session_factory,
        clock=request.app.state.clock,
        user_id=user_id,
        default_language=settings.default_language,
        options=live.FeedOptions(poll_s=poll_ms / 1000, heartbeat_s=heartbeat_s, max_events=max_events),
        is_disconnected=request.is_disconnected,
    )
    return StreamingResponse(feed, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/supervisor/events", response_class=StreamingResponse)
def supervisor_events(
    request: Request,
    _: SupervisorDep,
    session: SessionDep,
    campaign_id: int,
    tz: Tz = reports.DEFAULT_TZ,
    poll_ms: PollMs = 500,
    heartbeat_s: HeartbeatS = 15.0,
    max_events: MaxEvents = None,
) -> StreamingResponse:
    """Server-Sent Events for one campaign: wallboard snapshots and agent state changes."""
    if session.get(Campaign, campaign_id) is None:
        raise NotFound(f"campaign {campaign_id} not found")
    reports.zone(tz)
    session.close()  # give the pooled connection back: the stream may last hours and polls on its own
    feed = live.supervisor_feed(
        factory=request.app.state.session_factory,
        clock=request.app.state.clock,
        campaign_id=campaign_id,
        tz_name=tz,
        options=live.FeedOptions(poll_s=poll_ms / 1000, heartbeat_s=heartbeat_s, max_events=max_events),
        is_disconnected=request.is_disconnected,
    )
    return StreamingResponse(feed, media_type="text/event-stream", headers=SSE_HEADERS)
