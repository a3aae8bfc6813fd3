"""Campaign, lead-list, lead and import use cases. Services add to the session and never commit,
except `run_import_batch`'s caller, which commits one batch at a time so an import can resume."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from core.errors import Conflict, NotFound, ValidationFailed
from core.phone import InvalidPhoneNumber, normalize
from dialer import lead_import
from dialer.dnc import dnc_matcher
from dialer.models import Campaign, ImportJob, Lead, LeadList

MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_STORED_ERRORS = 5000


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def _normalized_caller_id(raw: str, region: str) -> str:
    try:
        return normalize(raw, region).e164
    except InvalidPhoneNumber as exc:
        raise ValidationFailed(
            f"caller ID: {exc.message}", details={"field": "caller_id_number", "reason": exc.reason_code}
        ) from exc


def create_campaign(session: Session, actor: audit.Actor, fields: dict[str, Any], *, region: str) -> Campaign:
    if session.scalar(select(Campaign.id).where(Campaign.name == fields["name"])) is not None:
        raise Conflict(f"campaign {fields['name']!r} already exists", details={"field": "name"})
    # One fixed, registered caller ID per campaign: stored normalised, never rotated (CN rules forbid
    # altered caller numbers, and customers must be able to call back).
    fields = {**fields, "caller_id_number": _normalized_caller_id(fields["caller_id_number"], region)}
    campaign = Campaign(**fields)
    session.add(campaign)
    session.flush()
    audit.record(
        session,
        actor,
        action="campaign.create",
        entity_type="campaign",
        entity_id=campaign.id,
        details={k: v for k, v in fields.items() if isinstance(v, str | int | float)},
    )
    return campaign


def update_campaign(
    session: Session, actor: audit.Actor, campaign_id: int, changes: dict[str, Any]
) -> Campaign:
    campaign = get_campaign(session, campaign_id)
    applied = {}
    for key, value in changes.items():
        if getattr(campaign, key) != value:
            setattr(campaign, key, value)
            applied[key] = value
    if applied:
        audit.record(
            session,
            actor,
            action="campaign.update",
            entity_type="campaign",
            entity_id=campaign.id,
            details=applied,
        )
    return campaign


def create_list(
    session: Session, actor: audit.Actor, campaign_id: int, *, name: str, priority: int
) -> LeadList:
    get_campaign(session, campaign_id)
    lead_list = LeadList(campaign_id=campaign_id, name=name, priority=priority)
    session.add(lead_list)
    session.flush()
    audit.record(
        session,
        actor,
        action="lead_list.create",
        entity_type="lead_list",
        entity_id=lead_list.id,
        details={"campaign_id": campaign_id, "name": name},
    )
    return lead_list


def get_list(session: Session, campaign_id: int, list_id: int) -> LeadList:
    lead_list = session.get(LeadList, list_id)
    if lead_list is None or lead_list.campaign_id != campaign_id:
        raise NotFound(f"lead list {list_id} not found in campaign {campaign_id}")
    return lead_list


def add_lead(
    session: Session,
    actor: audit.Actor,
    campaign_id: int,
    fields: dict[str, Any],
    *,
    region: str,
    now: datetime,
) -> Lead:
    get_campaign(session, campaign_id)
    if fields.get("list_id") is not None:
        get_list(session, campaign_id, fields["list_id"])
    try:
        number = normalize(fields.pop("phone"), region)
    except InvalidPhoneNumber as exc:
        raise ValidationFailed(exc.message, details={"field": "phone", "reason": exc.reason_code}) from exc
    if dnc_matcher(session, campaign_id=campaign_id, now=now, numbers=[number.e164])(number.e164):
        raise ValidationFailed(
            f"{number.e164} is on a do-not-call list", details={"field": "phone", "reason": "dnc"}
        )
    if session.scalar(select(Lead.id).where(Lead.campaign_id == campaign_id, Lead.phone_e164 == number.e164)):
        raise Conflict(
            f"{number.e164} is already a lead of campaign {campaign_id}", details={"field": "phone"}
        )
    lead = Lead(
        campaign_id=campaign_id,
        phone_e164=number.e164,
        region=number.region_code or region,
        timezone=number.timezone or "",
        **fields,
    )
    session.add(lead)
    session.flush()
    return lead


def get_lead(session: Session, campaign_id: int, lead_id: int) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None or lead.campaign_id != campaign_id:
        raise NotFound(f"lead {lead_id} not found in campaign {campaign_id}")
    return lead


def update_lead(session: Session, campaign_id: int, lead_id: int, changes: dict[str, Any]) -> Lead:
    lead = get_lead(session, campaign_id, lead_id)
    for key, value in changes.items():
        setattr(lead, key, value)
    return lead


def create_import_job(
    session: Session, actor: audit.Actor, campaign_id: int, list_id: int, *, filename: str, content: bytes
) -> ImportJob:
    get_list(session, campaign_id, list_id)
    if not content:
        raise ValidationFailed("the uploaded file is empty", details={"field": "file"})
    if len(content) > MAX_IMPORT_BYTES:
        raise ValidationFailed(f"the file exceeds {MAX_IMPORT_BYTES} bytes", details={"field": "file"})
    job = ImportJob(
        campaign_id=campaign_id,
        list_id=list_id,
        filename=filename[:256],
        content=content,
        created_by_id=actor.user_id,
    )
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor,
        action="lead_import.create",
        entity_type="import_job",
        entity_id=job.id,
        details={"filename": filename, "bytes": len(content), "list_id": list_id},
    )
    return job


@dataclass(frozen=True, slots=True)
class BatchResult:
    done: bool
    processed_rows: int


def run_import_batch(
    session: Session, job_id: int, *, region: str, now: datetime, batch_size: int = 1000
) -> BatchResult:
    """Import the next `batch_size` unprocessed rows of a job; progress is saved in the same transaction
    as the leads, so a worker killed mid-import resumes exactly where the last commit left it."""
    job = session.get(ImportJob, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"import job {job_id} not found")
    if job.status in ("done", "failed"):
        return BatchResult(done=True, processed_rows=job.processed_rows)
    job.status = "running"
    try:
        rows = lead_import.read_rows(job.content, job.filename)
        header = next(rows, None)
        if header is None:
            raise lead_import.UnreadableFile("file is empty")
        body = [row for row in rows if any(c.strip() for c in row[1])]
        batch = body[job.processed_rows : job.processed_rows + batch_size]
        parsed = lead_import.parse_rows([header, *batch], default_region=region)
        # Look up only this batch's numbers: loading every phone of a million-lead campaign and a whole
        # national DNC register for each batch of a thousand rows was the import's cost.
        phones = sorted(parsed.phones)
        in_campaign = select(Lead.phone_e164).where(Lead.campaign_id == job.campaign_id)
        existing = set(session.scalars(in_campaign.where(Lead.phone_e164.in_(phones)))) if phones else set()
        plan = lead_import.screen_rows(
            parsed,
            existing_phones=existing,
            is_dnc=dnc_matcher(session, campaign_id=job.campaign_id, now=now, numbers=phones),
        )
    except lead_import.UnreadableFile as exc:
        job.status, job.failure, job.finished_at = "failed", str(exc), now
        return BatchResult(done=True, processed_rows=job.processed_rows)
    for draft in plan.drafts:
        session.add(
            Lead(
                campaign_id=job.campaign_id,
                list_id=job.list_id,
                phone_e164=draft.phone_e164,
                region=draft.region,
                timezone=draft.timezone,
                name=draft.name,
                company=draft.company,
                segment=draft.segment,
                grade=draft.grade,
                priority=draft.priority,
                alt_phones=list(draft.alt_phones),
                custom=dict(draft.custom),
            )
        )
    job.total_rows = len(body)
    job.processed_rows += len(batch)
    job.imported += len(plan.drafts)
    job.rejected += len(plan.errors)
    room = MAX_STORED_ERRORS - len(job.errors)
    if room > 0 and plan.errors:
        job.errors = [
            *job.errors,
            *(
                {"line": e.line, "code": e.code, "field": e.field, "message": e.message}
                for e in plan.errors[:room]
            ),
        ]
    done = job.processed_rows >= len(body)
    if done:
        job.status, job.finished_at = "done", now
    return BatchResult(done=done, processed_rows=job.processed_rows)


def count_leads(session: Session, campaign_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Lead).where(Lead.campaign_id == campaign_id)) or 0
