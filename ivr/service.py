"""Screening administration use cases: number rules, trunks, settings, decisions. No commits here."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.errors import Conflict, NotFound, ValidationFailed
from core.models import AppSetting
from dialer.lead_import import UnreadableFile, decode_text, spreadsheet_safe
from dialer.models import Call
from ivr.models import NumberRule, ScreeningDecision, Trunk
from ivr.schemas import NumberRuleIn, ScreeningSettings

SCREENING_SETTINGS_KEY = "screening"
_DIGITS = re.compile(r"^\+?\d{1,20}$")
_PATTERN = re.compile(r"^\+?[0-9XNZ\[\]\-.!]{1,40}$")
RULE_CSV_FIELDS = (
    "purpose",
    "kind",
    "value",
    "value_end",
    "action",
    "scope",
    "expires_at",
    "source",
    "reason",
)


def check_rule_values(rule: NumberRuleIn) -> None:
    """Values must be digits (optionally +) for exact/prefix/range, or the limited glob for patterns."""
    values = [rule.value, rule.value_end] if rule.kind == "range" else [rule.value]
    checker = _PATTERN if rule.kind == "pattern" else _DIGITS
    for value in values:
        if not checker.match(value):
            raise ValidationFailed(f"{value!r} is not a valid {rule.kind} value", details={"field": "value"})
    if rule.kind == "range" and (len(rule.value) != len(rule.value_end) or rule.value > rule.value_end):
        raise ValidationFailed(
            "a range needs two numbers of equal length, low ≤ high", details={"field": "value_end"}
        )


def create_rule(session: Session, actor: audit.Actor, rule: NumberRuleIn) -> NumberRule:
    check_rule_values(rule)
    row = NumberRule(**rule.model_dump(), created_by_id=actor.user_id)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        action="number_rule.create",
        entity_type="number_rule",
        entity_id=row.id,
        details=rule.model_dump(mode="json"),
    )
    return row


def get_rule(session: Session, rule_id: int) -> NumberRule:
    row = session.get(NumberRule, rule_id)
    if row is None:
        raise NotFound(f"number rule {rule_id} not found")
    return row


def delete_rule(session: Session, actor: audit.Actor, rule_id: int) -> None:
    row = get_rule(session, rule_id)
    audit.record(
        session,
        actor,
        action="number_rule.delete",
        entity_type="number_rule",
        entity_id=row.id,
        details={"kind": row.kind, "value": row.value, "action": row.action, "scope": row.scope},
    )
    session.delete(row)


def import_rules_csv(session: Session, actor: audit.Actor, data: bytes) -> tuple[int, list[dict[str, Any]]]:
    """Import rules from CSV (header = RULE_CSV_FIELDS subset); bad lines are reported, the rest kept."""
    try:
        text = decode_text(data)
    except UnreadableFile as exc:
        raise ValidationFailed(str(exc), details={"field": "file"}) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "value" not in reader.fieldnames or "kind" not in reader.fieldnames:
        raise ValidationFailed("the CSV header needs at least 'kind' and 'value'", details={"field": "file"})
    imported, errors = 0, []
    records = iter(reader)
    while True:
        try:
            record = next(records)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the CSV field-size limit: report the line, go on
            errors.append({"line": reader.line_num, "message": f"unreadable CSV line: {exc}"})
            continue
        line = reader.line_num
        if any("\x00" in (v or "") for v in record.values() if isinstance(v, str)):
            errors.append({"line": line, "message": "the line contains a NUL character"})
            continue
        fields = {k: (v or "").strip() for k, v in record.items() if k in RULE_CSV_FIELDS and v and v.strip()}
        try:
            rule = NumberRuleIn.model_validate(fields)
            check_rule_values(rule)
        except ValidationError as exc:
            errors.append({"line": line, "message": "; ".join(e["msg"] for e in exc.errors())})
            continue
        except ValidationFailed as exc:
            errors.append({"line": line, "message": exc.message})
            continue
        session.add(NumberRule(**rule.model_dump(), created_by_id=actor.user_id))
        imported += 1
    audit.record(
        session,
        actor,
        action="number_rule.import",
        entity_type="number_rule",
        details={"imported": imported, "rejected": len(errors)},
    )
    return imported, errors


def export_rules_csv(rows: Iterable[NumberRule]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("id", *RULE_CSV_FIELDS, "hits"))
    for r in rows:
        writer.writerow(
            (
                r.id,
                r.purpose,
                r.kind,
                r.value,
                r.value_end,
                r.action,
                r.scope,
                r.expires_at.isoformat() if r.expires_at else "",
                spreadsheet_safe(r.source),
                spreadsheet_safe(r.reason),
                r.hits,
            )
        )
    return out.getvalue()


def create_trunk(session: Session, actor: audit.Actor, fields: dict[str, Any]) -> Trunk:
    if session.scalar(select(Trunk.id).where(Trunk.name == fields["name"])) is not None:
        raise Conflict(f"trunk {fields['name']!r} already exists", details={"field": "name"})
    trunk = Trunk(**fields)
    session.add(trunk)
    session.flush()
    audit.record(
        session, actor, action="trunk.create", entity_type="trunk", entity_id=trunk.id, details=fields
    )
    return trunk


def update_trunk(session: Session, actor: audit.Actor, trunk_id: int, fields: dict[str, Any]) -> Trunk:
    trunk = session.get(Trunk, trunk_id)
    if trunk is None:
        raise NotFound(f"trunk {trunk_id} not found")
    for key, value in fields.items():
        setattr(trunk, key, value)
    audit.record(
        session, actor, action="trunk.update", entity_type="trunk", entity_id=trunk.id, details=fields
    )
    return trunk


def load_settings(session: Session) -> ScreeningSettings:
    row = session.get(AppSetting, SCREENING_SETTINGS_KEY)
    return ScreeningSettings.model_validate(row.value) if row else ScreeningSettings()


def save_settings(session: Session, actor: audit.Actor, new: ScreeningSettings) -> ScreeningSettings:
    row = session.get(AppSetting, SCREENING_SETTINGS_KEY)
    old = row.value if row else ScreeningSettings().model_dump()
    value = new.model_dump()
    if row is None:
        session.add(AppSetting(key=SCREENING_SETTINGS_KEY, value=value))
    else:
        row.value = value
    changed = {k: v for k, v in value.items() if old.get(k) != v}
    audit.record(
        session,
        actor,
        action="screening_settings.update",
        entity_type="app_setting",
        entity_id=SCREENING_SETTINGS_KEY,
        details=changed,
    )
    return new


def block_caller_of_call(
    session: Session, actor: audit.Actor, call_id: int, *, reason: str, expires_at: datetime | None
) -> NumberRule:
    """'Block this caller' from a call record: an exact global screening rule for its caller number."""
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id} not found")
    number = call.from_number if call.direction == "inbound" else call.to_number
    if not _DIGITS.match(number or ""):
        raise ValidationFailed(
            f"the call's number {number!r} cannot be blocked (empty or not a number)",
            details={"field": "from_number"},
        )
    existing = session.scalar(
        select(NumberRule).where(
            NumberRule.purpose == "screening",
            NumberRule.kind == "exact",
            NumberRule.value == number,
            NumberRule.action == "block",
            NumberRule.scope == "global",
        )
    )
    if existing is not None:
        return existing
    return create_rule(
        session,
        actor,
        NumberRuleIn(
            kind="exact",
            value=number,
            action="block",
            source=f"call:{call_id}",
            reason=reason,
            expires_at=expires_at,
        ),
    )


def decision_counts_by_reason(session: Session, since: datetime) -> dict[str, int]:
    """How many decisions each reason code contributed to since `since` (statistics per rule)."""
    counts: dict[str, int] = {}
    for reasons in session.scalars(select(ScreeningDecision.reasons).where(ScreeningDecision.at >= since)):
        for reason in reasons:
            code = reason.get("code", "") if isinstance(reason, dict) else str(reason)
            counts[code] = counts.get(code, 0) + 1
    return counts


def count_rules(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(NumberRule)) or 0
