"""Recordings and QA review tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base


class Recording(Base):
    __tablename__ = "recording"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id"), index=True)
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempt.id"), index=True)
    storage_key: Mapped[str] = mapped_column(String(256), unique=True)
    original_key: Mapped[str] = mapped_column(String(256), default="")
    content_type: Mapped[str] = mapped_column(String(64), default="audio/wav")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|processed|empty|corrupt
    duration_s: Mapped[float] = mapped_column(default=0.0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    legal_hold: Mapped[bool] = mapped_column(default=False)
    purge_after: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaScorecard(Base):
    __tablename__ = "qa_scorecard"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(default=1)
    body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaReview(Base):
    __tablename__ = "qa_review"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id"), index=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("qa_scorecard.id"))
    reviewer_user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total_pct: Mapped[float] = mapped_column(default=0.0)
    auto_failed: Mapped[bool] = mapped_column(default=False)
    comments: Mapped[list[Any]] = mapped_column(default=list)  # [{"at_s": 12.5, "text": "..."}]
    summary: Mapped[str] = mapped_column(Text, default="")
    acknowledged_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
