"""Outbound tables: campaigns, lead lists, leads, the dial ledger, calls (CDR), dispositions, scripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base


class Campaign(Base):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="paused")  # active | paused | archived
    dial_mode: Mapped[str] = mapped_column(
        String(16), default="progressive"
    )  # preview|progressive|ratio|predictive
    dial_ratio: Mapped[float] = mapped_column(default=1.0)
    max_lines: Mapped[int] = mapped_column(default=50)
    caller_id_number: Mapped[str] = mapped_column(String(32))  # fixed, registered; never rotated
    caller_id_name: Mapped[str] = mapped_column(String(64), default="")
    company_name: Mapped[str] = mapped_column(String(128), default="")  # for the safe-harbour message
    callback_number: Mapped[str] = mapped_column(String(32), default="")
    regime: Mapped[str] = mapped_column(String(8), default="CN")
    abandon_target: Mapped[float] = mapped_column(default=0.03)
    ring_timeout_s: Mapped[int] = mapped_column(default=25)
    max_attempts: Mapped[int] = mapped_column(default=5)
    calling_windows: Mapped[dict[str, Any]] = mapped_column(default=dict)
    retry_rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dispositions: Mapped[list[Any]] = mapped_column(default=list)
    queue_name: Mapped[str] = mapped_column(String(64), default="")
    dialer_node: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeadList(Base):
    __tablename__ = "lead_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    priority: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lead(Base):
    __tablename__ = "lead"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone_e164", name="uq_lead_campaign_phone"),
        Index("ix_lead_hopper", "campaign_id", "status", "next_call_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lead_list.id", ondelete="SET NULL"), index=True)
    phone_e164: Mapped[str] = mapped_column(String(20))
    alt_phones: Mapped[list[Any]] = mapped_column(default=list)
    name: Mapped[str] = mapped_column(String(128), default="")
    company: Mapped[str] = mapped_column(String(256), default="")
    segment: Mapped[str] = mapped_column(String(32), default="")
    region: Mapped[str] = mapped_column(String(8), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="")
    grade: Mapped[str] = mapped_column(String(1), default="")  # A / B / C intent
    man_money: Mapped[bool] = mapped_column(default=False)
    man_authority: Mapped[bool] = mapped_column(default=False)
    man_need: Mapped[bool] = mapped_column(default=False)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(24), default="new")  # new|dialing|callback|done|dnc|invalid
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None]
    last_outcome: Mapped[str] = mapped_column(String(24), default="")
    next_call_at: Mapped[datetime | None]
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attempt(Base):
    """The dial ledger: written before Originate is sent, so no dial is ever untracked."""

    __tablename__ = "attempt"
    __table_args__ = (
        Index("ix_attempt_open", "state", "dialer_node"),
        # Contact history by number across campaigns (frequency caps, "called recently" warning).
        Index("ix_attempt_phone", "phone_e164", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # our attempt id, sent as CC_ATTEMPT_ID
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), index=True)
    phone_e164: Mapped[str] = mapped_column(String(20))
    action_id: Mapped[str] = mapped_column(String(64), default="")
    dialer_node: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(16), default="originating")
    outcome: Mapped[str] = mapped_column(String(24), default="")
    hangup_cause: Mapped[int | None]
    channel: Mapped[str] = mapped_column(String(128), default="")
    uniqueid: Mapped[str] = mapped_column(String(64), default="", index=True)
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    bridged_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class Call(Base):
    """One CDR row per call leg we care about (outbound attempt or inbound call)."""

    __tablename__ = "call"

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempt.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"), index=True)
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    from_number: Mapped[str] = mapped_column(String(64), default="")
    to_number: Mapped[str] = mapped_column(String(64), default="")
    trunk: Mapped[str] = mapped_column(String(64), default="")
    uniqueid: Mapped[str] = mapped_column(String(64), default="", index=True)
    linkedid: Mapped[str] = mapped_column(String(64), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ring_s: Mapped[float] = mapped_column(default=0.0)
    talk_s: Mapped[float] = mapped_column(default=0.0)
    hangup_cause: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(String(24), default="")
    disposition_code: Mapped[str] = mapped_column(String(32), default="")


class Disposition(Base):
    __tablename__ = "disposition"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id"), index=True)
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempt.id"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), index=True)
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    code: Mapped[str] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text, default="")
    grade: Mapped[str] = mapped_column(String(1), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    script_trail: Mapped[list[Any]] = mapped_column(default=list)  # stages visited with timestamps
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Callback(Base):
    __tablename__ = "callback"

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("lead.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    due_at: Mapped[datetime] = mapped_column(index=True)
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))  # None: anyone
    note: Mapped[str] = mapped_column(Text, default="")
    done_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Script(Base):
    """A versioned call script: a tree of stages with lead-field placeholders."""

    __tablename__ = "script"
    __table_args__ = (UniqueConstraint("campaign_id", "language", "version", name="uq_script_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8), default="zh-CN")
    version: Mapped[int] = mapped_column(default=1)
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_published: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportJob(Base):
    """A lead-file import: the file is kept with the job so any worker can run or resume it."""

    __tablename__ = "import_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lead_list.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(256))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    total_rows: Mapped[int] = mapped_column(default=0)
    processed_rows: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)  # [{line, code, field, message}], capped
    failure: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
