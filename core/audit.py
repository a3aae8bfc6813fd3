"""Audit log: every admin change (and every recording listen) becomes one row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.models import AuditLog


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    label: str
    request_id: str = ""


def record(
    session: Session,
    actor: Actor,
    *,
    action: str,
    entity_type: str,
    entity_id: object = "",
    details: dict[str, Any] | None = None,
    summary: str = "",
) -> AuditLog:
    """Add an audit row to the unit of work (it commits with the change it describes)."""
    row = AuditLog(
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        request_id=actor.request_id,
        details=details or {},
        summary=summary,
    )
    session.add(row)
    return row
