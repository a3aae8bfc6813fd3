"""Live agent sessions: which agent is logged into which campaign, and in what state."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base

if TYPE_CHECKING:
    from dialer.models import Campaign


class AgentSession(Base):
    __tablename__ = "agent_session"
    __table_args__ = (Index("ix_agent_session_pool", "campaign_id", "state"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    extension: Mapped[str] = mapped_column(String(32))
    # logged_out | ready | paused | reserved | on_call | wrap_up  (agents/state.py holds the rules)
    state: Mapped[str] = mapped_column(String(16), default="paused")
    pause_reason: Mapped[str] = mapped_column(String(32), default="")
    state_since: Mapped[datetime] = mapped_column(default=utcnow)
    wrap_until: Mapped[datetime | None]
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempt.id", ondelete="SET NULL"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id", ondelete="SET NULL"))
    logged_in_at: Mapped[datetime] = mapped_column(default=utcnow)

    # Loaded with the session row on agent requests (agents/repository.agent_session): one round trip.
    campaign: Mapped[Campaign] = relationship(viewonly=True)
