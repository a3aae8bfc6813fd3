"""Read access to the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from api.deps import AdminDep, PaginationDep, SessionDep
from api.schemas import Page
from core.models import AuditLog

router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor_user_id: int | None
    actor_label: str
    action: str
    entity_type: str
    entity_id: str
    request_id: str
    details: dict[str, Any]


@router.get("/audit-log", response_model=Page[AuditOut])
def list_audit(
    _: AdminDep,
    session: SessionDep,
    page: PaginationDep,
    entity_type: str | None = None,
    action: str | None = None,
) -> Page[AuditOut]:
    query = select(AuditLog)
    if entity_type:
        query = query.where(AuditLog.entity_type == entity_type)
    if action:
        query = query.where(AuditLog.action == action)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(AuditLog.id.desc()).limit(page.limit).offset(page.offset)).all()
    return Page(
        items=[AuditOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )
