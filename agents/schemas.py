"""API schemas for the agent workspace, supervisor views, live events and agent reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class LoginIn(BaseModel):
    campaign_id: int
    extension: str = Field(min_length=1, max_length=32)


class StateIn(BaseModel):
    state: Literal["ready", "paused"]
    reason: str = Field(default="", max_length=32)


class LeadCard(BaseModel):
    """What an agent sees of a lead on the screen pop."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    campaign_id: int
    phone_e164: str
    alt_phones: list[Any]
    name: str
    company: str
    segment: str
    region: str
    timezone: str
    grade: str
    man_money: bool
    man_authority: bool
    man_need: bool
    custom: dict[str, Any]
    status: str
    attempts: int
    last_outcome: str
    last_attempt_at: datetime | None
    next_call_at: datetime | None


class ContactOut(BaseModel):
    """One recent contact with the lead's number (any campaign) by an agent."""

    at: datetime
    agent_user_id: int | None
    agent_name: str
    campaign_id: int
    campaign_name: str
    lead_id: int
    outcome: str


class ContactWarning(BaseModel):
    """SEEDS: one customer got three identical calls in half a day; say who called before dialling."""

    message: str
    hours: int
    contacts: list[ContactOut]


class BranchOut(BaseModel):
    label: str
    to: str


class RecommendationOut(BaseModel):
    to: str
    title: str
    why: str


class StageOut(BaseModel):
    """A script stage rendered for the current lead, with where it came from."""

    id: str
    kind: str
    title: str
    text: str
    hints: list[str]
    branches: list[BranchOut]
    recommended: list[RecommendationOut]
    objection: str | None
    start: str
    source: Literal["campaign", "sample"]
    script_id: int | None
    script_version: int | None
    language: str


class CurrentCallOut(BaseModel):
    attempt_id: str | None  # None while a preview lead is reserved but not dialled yet
    lead: LeadCard
    warning: ContactWarning | None
    script: StageOut


class CampaignBrief(BaseModel):
    id: int
    name: str
    dial_mode: str


class AgentSessionOut(BaseModel):
    user_id: int
    campaign: CampaignBrief
    extension: str
    state: str
    pause_reason: str
    state_since: datetime
    seconds_in_state: float
    wrap_until: datetime | None
    wrap_remaining_s: float | None
    logged_in_at: datetime
    call: CurrentCallOut | None


class AppointmentDetails(BaseModel):
    """The face-to-face meeting an appointment books (SEEDS: the purpose of the cold call)."""

    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime | None = None
    place: str = Field(default="", max_length=512)
    attendees: list[str] = Field(default_factory=list, max_length=50)
    materials: list[str] = Field(default_factory=list, max_length=50)


class DispositionIn(BaseModel):
    code: str = Field(min_length=1, max_length=32)
    notes: str = Field(default="", max_length=10_000)
    grade: Literal["", "A", "B", "C"] = ""
    man_money: bool | None = None
    man_authority: bool | None = None
    man_need: bool | None = None
    callback_at: AwareDatetime | None = None
    callback_personal: bool = True
    details: AppointmentDetails | None = None
    # The trail the client kept from POST /agent/script/visit answers (server-stamped visits).
    script_trail: list[dict[str, Any]] = Field(default_factory=list, max_length=500)
    then: Literal["ready", "paused"] = "ready"


class DispositionOut(BaseModel):
    id: int
    code: str
    lead_id: int
    attempt_id: str | None
    call_id: int | None
    created_at: datetime
    lead_status: str
    next_call_at: datetime | None
    agent_state: str


class VisitOut(BaseModel):
    stage: str
    at: datetime


class ScriptVisitIn(BaseModel):
    stage: str = Field(min_length=1, max_length=64)
    trail: list[dict[str, Any]] = Field(default_factory=list, max_length=500)


class ScriptVisitOut(BaseModel):
    """The trail with this visit appended (keep it and send it back with the disposition)."""

    trail: list[VisitOut]
    stage: StageOut


class AttemptRow(BaseModel):
    id: str
    campaign_id: int
    state: str
    outcome: str
    agent_user_id: int | None
    agent_name: str
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None


class CallRow(BaseModel):
    id: int
    attempt_id: str | None
    direction: str
    agent_user_id: int | None
    agent_name: str
    started_at: datetime
    answered_at: datetime | None
    talk_s: float
    outcome: str
    disposition_code: str


class DispositionRow(BaseModel):
    id: int
    code: str
    notes: str
    grade: str
    details: dict[str, Any]
    agent_user_id: int | None
    agent_name: str
    created_at: datetime


class CallbackRow(BaseModel):
    id: int
    lead_id: int
    campaign_id: int
    due_at: datetime
    owner_user_id: int | None
    owner_name: str
    note: str
    done_at: datetime | None


class LeadHistoryOut(BaseModel):
    lead: LeadCard
    attempts: list[AttemptRow]
    calls: list[CallRow]
    dispositions: list[DispositionRow]
    callbacks: list[CallbackRow]
    # Contacts with the same number from other campaigns (no notes: those stay with their campaign).
    other_campaigns: list[ContactOut]
    warning: ContactWarning | None


class PreviewOut(BaseModel):
    lead: LeadCard
    history: LeadHistoryOut
    warning: ContactWarning | None
    script: StageOut


class PreviewDialOut(BaseModel):
    attempt_id: str
    lead_id: int
    state: str


class PreviewSkipIn(BaseModel):
    # How long the skipped lead stays out of the preview queue, so the next request brings another one.
    delay_minutes: int = Field(default=15, ge=0, le=24 * 60)


class AgentCallbackOut(BaseModel):
    id: int
    lead_id: int
    campaign_id: int
    due_at: datetime
    overdue: bool
    personal: bool
    owner_user_id: int | None
    owner_name: str
    note: str
    lead_name: str
    lead_company: str
    lead_phone: str


class LiveAgentOut(BaseModel):
    user_id: int
    username: str
    display_name: str
    campaign_id: int
    campaign_name: str
    extension: str
    state: str
    pause_reason: str
    since: datetime
    seconds_in_state: float
    wrap_until: datetime | None
    attempt_id: str | None
    lead_id: int | None
    lead_name: str
    lead_company: str


class AbandonOut(BaseModel):
    window_days: int
    answered: int
    abandoned: int
    rate: float
    target: float
    remaining_abandons: int
    exceeded: bool


class WallboardOut(BaseModel):
    campaign_id: int
    campaign_name: str
    at: datetime
    day: date
    timezone: str
    agents_by_state: dict[str, int]
    agents_logged_in: int
    calls_in_flight: int
    dialed_today: int
    answered_today: int
    answer_rate_today: float
    appointments_today: int
    abandon: AbandonOut


class AgentDayRow(BaseModel):
    day: date
    agent_user_id: int
    agent_name: str
    calls: int
    contacts: int
    talk_s: float
    appointments: int
    appointment_rate: float  # appointments per contact
    target_calls: int | None
    target_appointments: int | None
    calls_vs_target: float | None  # calls / target_calls
    appointments_vs_target: float | None
