"""Number rules (inbound block/allow and outbound DNC share one table), trunks, screening decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base


class NumberRule(Base):
    __tablename__ = "number_rule"
    __table_args__ = (Index("ix_number_rule_lookup", "purpose", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16), default="screening")  # screening | dnc
    kind: Mapped[str] = mapped_column(String(16))  # exact | prefix | range | pattern
    value: Mapped[str] = mapped_column(String(64))
    value_end: Mapped[str] = mapped_column(String(64), default="")  # range upper bound
    action: Mapped[str] = mapped_column(String(16))  # allow | block | challenge
    scope: Mapped[str] = mapped_column(String(64), default="global")  # global | trunk:<name> | campaign:<id>
    expires_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(64), default="manual")
    reason: Mapped[str] = mapped_column(Text, default="")
    hits: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Trunk(Base):
    __tablename__ = "trunk"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    allowed_caller_patterns: Mapped[list[Any]] = mapped_column(default=list)  # screening group
    authorised_protected_numbers: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScreeningDecision(Base):
    __tablename__ = "screening_decision"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    uniqueid: Mapped[str] = mapped_column(String(64), default="", index=True)
    caller: Mapped[str] = mapped_column(String(64), default="", index=True)
    called: Mapped[str] = mapped_column(String(64), default="")
    trunk: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(16))
    final_action: Mapped[str] = mapped_column(String(16), default="")  # after the IVR challenge
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    latency_us: Mapped[int] = mapped_column(default=0)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
