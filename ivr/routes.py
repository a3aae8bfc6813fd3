"""HTTP in: screening administration (number rules, trunks, settings) and decision history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status
from fastapi.responses import PlainTextResponse
from sqlalchemy import func, select

from api.deps import AdminDep, ClockDep, PaginationDep, SessionDep, SupervisorDep
from api.schemas import Page
from core.errors import ValidationFailed
from ivr import service
from ivr.models import NumberRule, ScreeningDecision, Trunk
from ivr.schemas import (
    BlockCallerIn,
    NumberRuleIn,
    NumberRuleOut,
    RuleImportReport,
    ScreeningDecisionOut,
    ScreeningSettings,
    TrunkIn,
    TrunkOut,
)

router = APIRouter(prefix="/screening", tags=["screening"])
MAX_RULE_CSV_BYTES = 20 * 1024 * 1024


@router.get("/rules", response_model=Page[NumberRuleOut])
def list_rules(
    _: SupervisorDep,
    session: SessionDep,
    page: PaginationDep,
    purpose: str | None = None,
    action: str | None = None,
    value: str | None = None,
) -> Page[NumberRuleOut]:
    query = select(NumberRule)
    if purpose:
        query = query.where(NumberRule.purpose == purpose)
    if action:
        query = query.where(NumberRule.action == action)
    if value:
        query = query.where(NumberRule.value.startswith(value, autoescape=True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(NumberRule.id).limit(page.limit).offset(page.offset))
    return Page(
        items=[NumberRuleOut.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/rules", response_model=NumberRuleOut, status_code=status.HTTP_201_CREATED)
def create_rule(body: NumberRuleIn, principal: AdminDep, session: SessionDep) -> NumberRuleOut:
    return NumberRuleOut.model_validate(service.create_rule(session, principal.actor, body))


@router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: int, principal: AdminDep, session: SessionDep) -> None:
    service.delete_rule(session, principal.actor, rule_id)


@router.post("/rules/import", response_model=RuleImportReport)
async def import_rules(
    principal: AdminDep, session: SessionDep, file: Annotated[UploadFile, File()]
) -> RuleImportReport:
    data = await file.read(MAX_RULE_CSV_BYTES + 1)
    if len(data) > MAX_RULE_CSV_BYTES:
        raise ValidationFailed(f"the file exceeds {MAX_RULE_CSV_BYTES} bytes", details={"field": "file"})
    imported, errors = service.import_rules_csv(session, principal.actor, data)
    return RuleImportReport(imported=imported, rejected=len(errors), errors=errors[:1000])


@router.get("/rules/export", response_class=PlainTextResponse)
def export_rules(_: SupervisorDep, session: SessionDep) -> PlainTextResponse:
    rows = session.scalars(select(NumberRule).order_by(NumberRule.id))
    return PlainTextResponse(
        service.export_rules_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="number-rules.csv"'},
    )


@router.get("/trunks", response_model=list[TrunkOut])
def list_trunks(_: SupervisorDep, session: SessionDep) -> list[TrunkOut]:
    return [TrunkOut.model_validate(t) for t in session.scalars(select(Trunk).order_by(Trunk.name))]


@router.post("/trunks", response_model=TrunkOut, status_code=status.HTTP_201_CREATED)
def create_trunk(body: TrunkIn, principal: AdminDep, session: SessionDep) -> TrunkOut:
    return TrunkOut.model_validate(service.create_trunk(session, principal.actor, body.model_dump()))


@router.put("/trunks/{trunk_id}", response_model=TrunkOut)
def update_trunk(trunk_id: int, body: TrunkIn, principal: AdminDep, session: SessionDep) -> TrunkOut:
    return TrunkOut.model_validate(
        service.update_trunk(session, principal.actor, trunk_id, body.model_dump())
    )


@router.get("/settings", response_model=ScreeningSettings)
def get_settings(_: SupervisorDep, session: SessionDep) -> ScreeningSettings:
    return service.load_settings(session)


@router.put("/settings", response_model=ScreeningSettings)
def put_settings(body: ScreeningSettings, principal: AdminDep, session: SessionDep) -> ScreeningSettings:
    return service.save_settings(session, principal.actor, body)


@router.get("/decisions", response_model=Page[ScreeningDecisionOut])
def list_decisions(
    _: SupervisorDep,
    session: SessionDep,
    page: PaginationDep,
    caller: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
) -> Page[ScreeningDecisionOut]:
    query = select(ScreeningDecision)
    if caller:
        query = query.where(ScreeningDecision.caller == caller)
    if action:
        query = query.where(ScreeningDecision.action == action)
    if since:
        query = query.where(ScreeningDecision.at >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ScreeningDecision.id.desc()).limit(page.limit).offset(page.offset))
    return Page(
        items=[ScreeningDecisionOut.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/stats")
def stats(_: SupervisorDep, session: SessionDep, clock: ClockDep, hours: int = 24) -> dict[str, object]:
    """Decisions per action and per reason code over the last `hours`, and the busiest rules."""
    if not 1 <= hours <= 24 * 90:
        raise ValidationFailed("hours must be between 1 and 2160", details={"field": "hours"})
    since = clock.now() - timedelta(hours=hours)
    by_action = {
        action: count
        for action, count in session.execute(
            select(ScreeningDecision.action, func.count())
            .where(ScreeningDecision.at >= since)
            .group_by(ScreeningDecision.action)
        )
    }
    top_rules = session.execute(
        select(NumberRule.id, NumberRule.kind, NumberRule.value, NumberRule.hits)
        .where(NumberRule.hits > 0)
        .order_by(NumberRule.hits.desc())
        .limit(20)
    ).all()
    return {
        "since": since.isoformat(),
        "by_action": by_action,
        "by_reason": service.decision_counts_by_reason(session, since),
        "top_rules": [{"id": r.id, "kind": r.kind, "value": r.value, "hits": r.hits} for r in top_rules],
    }


@router.post("/calls/{call_id}/block", response_model=NumberRuleOut, status_code=status.HTTP_201_CREATED)
def block_caller(
    call_id: int, body: BlockCallerIn, principal: SupervisorDep, session: SessionDep
) -> NumberRuleOut:
    rule = service.block_caller_of_call(
        session, principal.actor, call_id, reason=body.reason, expires_at=body.expires_at
    )
    return NumberRuleOut.model_validate(rule)
