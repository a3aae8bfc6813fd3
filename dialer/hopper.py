"""The hopper: pick and reserve the leads to dial next, and write the dial ledger before any Originate.

On PostgreSQL the reservation uses `SELECT … FOR UPDATE SKIP LOCKED`, so several dialer engines or agents
asking at once never get the same lead; SQLite (embedded, single process) serialises writers instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, or_, select
from sqlalchemy.orm import Session

from dialer.models import Attempt, Lead

DIALABLE_STATUSES = ("new", "retry", "callback")
# Ledger state of a preview dial the agent asked for and the engine has not originated yet
# (Attempt.state is VARCHAR(16)).
PREVIEW_REQUESTED = "preview_request"
GRADE_ORDER = case({"A": 0, "B": 1, "C": 2}, value=Lead.grade, else_=3)


def reserve_leads(
    session: Session, *, campaign_id: int, limit: int, now: datetime, exclude_ids: Sequence[int] = ()
) -> list[Lead]:
    """Lock up to `limit` leads due now (callbacks first, then priority, then intent grade) and mark them
    `dialing`. The caller commits; until then other transactions skip these rows."""
    if limit <= 0:
        return []
    query = (
        select(Lead)
        .where(
            Lead.campaign_id == campaign_id,
            Lead.status.in_(DIALABLE_STATUSES),
            or_(Lead.next_call_at.is_(None), Lead.next_call_at <= now),
        )
        .order_by(
            case((Lead.status == "callback", 0), else_=1),
            Lead.priority.desc(),
            GRADE_ORDER,
            Lead.next_call_at.asc().nulls_first(),
            Lead.id,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if exclude_ids:
        query = query.where(Lead.id.not_in(list(exclude_ids)))
    leads = list(session.scalars(query))
    for lead in leads:
        lead.status = "dialing"
    return leads


def new_attempt_id() -> str:
    return "att-" + uuid.uuid4().hex


def open_attempt(
    session: Session,
    lead: Lead,
    *,
    dialer_node: str,
    now: datetime,
    action_id: str,
    attempt_id: str | None = None,
) -> Attempt:
    """The ledger row, in state `originating`; it must be committed before the Originate is sent."""
    attempt = Attempt(
        id=attempt_id or new_attempt_id(),
        campaign_id=lead.campaign_id,
        lead_id=lead.id,
        phone_e164=lead.phone_e164,
        action_id=action_id,
        dialer_node=dialer_node,
        state="originating",
        created_at=now,
    )
    session.add(attempt)
    lead.attempts += 1
    lead.last_attempt_at = now
    return attempt


def open_attempts(session: Session, *, dialer_node: str) -> list[Attempt]:
    """Attempts this node started that have not ended (to reconcile after a restart or reconnect)."""
    return list(
        session.scalars(
            select(Attempt).where(
                Attempt.dialer_node == dialer_node,
                Attempt.state.not_in(("ended", PREVIEW_REQUESTED)),  # requested, never sent: not in flight
            )
        )
    )
