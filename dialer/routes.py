"""HTTP in: campaigns, lead lists, leads and lead imports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile, status
from sqlalchemy import func, select

from api.deps import AnyUserDep, ClockDep, PaginationDep, SessionDep, SettingsDep, SupervisorDep
from api.schemas import Page
from core.errors import NotFound
from dialer import service
from dialer.models import Campaign, ImportJob, Lead, LeadList
from dialer.schemas import (
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    ImportJobOut,
    LeadIn,
    LeadListIn,
    LeadListOut,
    LeadOut,
    LeadPatch,
)

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


@router.get("", response_model=Page[CampaignOut])
def list_campaigns(_: AnyUserDep, session: SessionDep, page: PaginationDep) -> Page[CampaignOut]:
    total = session.scalar(select(func.count()).select_from(Campaign)) or 0
    rows = session.scalars(select(Campaign).order_by(Campaign.id).limit(page.limit).offset(page.offset))
    return Page(
        items=[CampaignOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("", response_model=CampaignOut, status_code=status.HTTP_201_CREATED)
def create_campaign(
    body: CampaignIn, principal: SupervisorDep, session: SessionDep, settings: SettingsDep
) -> CampaignOut:
    campaign = service.create_campaign(
        session, principal.actor, body.model_dump(), region=settings.default_region
    )
    return CampaignOut.model_validate(campaign)


@router.get("/{campaign_id}", response_model=CampaignOut)
def get_campaign(campaign_id: int, _: AnyUserDep, session: SessionDep) -> CampaignOut:
    return CampaignOut.model_validate(service.get_campaign(session, campaign_id))


@router.patch("/{campaign_id}", response_model=CampaignOut)
def update_campaign(
    campaign_id: int, body: CampaignPatch, principal: SupervisorDep, session: SessionDep
) -> CampaignOut:
    campaign = service.update_campaign(
        session, principal.actor, campaign_id, body.model_dump(exclude_none=True)
    )
    return CampaignOut.model_validate(campaign)


@router.get("/{campaign_id}/lists", response_model=list[LeadListOut])
def list_lists(campaign_id: int, _: SupervisorDep, session: SessionDep) -> list[LeadListOut]:
    service.get_campaign(session, campaign_id)
    rows = session.scalars(select(LeadList).where(LeadList.campaign_id == campaign_id).order_by(LeadList.id))
    return [LeadListOut.model_validate(r) for r in rows]


@router.post("/{campaign_id}/lists", response_model=LeadListOut, status_code=status.HTTP_201_CREATED)
def create_list(
    campaign_id: int, body: LeadListIn, principal: SupervisorDep, session: SessionDep
) -> LeadListOut:
    lead_list = service.create_list(
        session, principal.actor, campaign_id, name=body.name, priority=body.priority
    )
    return LeadListOut.model_validate(lead_list)


@router.get("/{campaign_id}/leads", response_model=Page[LeadOut])
def list_leads(
    campaign_id: int,
    _: SupervisorDep,
    session: SessionDep,
    page: PaginationDep,
    lead_status: str | None = None,
    grade: str | None = None,
) -> Page[LeadOut]:
    service.get_campaign(session, campaign_id)
    query = select(Lead).where(Lead.campaign_id == campaign_id)
    if lead_status:
        query = query.where(Lead.status == lead_status)
    if grade:
        query = query.where(Lead.grade == grade.upper())
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Lead.id).limit(page.limit).offset(page.offset))
    return Page(
        items=[LeadOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/{campaign_id}/leads", response_model=LeadOut, status_code=status.HTTP_201_CREATED)
def add_lead(
    campaign_id: int,
    body: LeadIn,
    principal: SupervisorDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> LeadOut:
    lead = service.add_lead(
        session,
        principal.actor,
        campaign_id,
        body.model_dump(),
        region=settings.default_region,
        now=clock.now(),
    )
    return LeadOut.model_validate(lead)


@router.get("/{campaign_id}/leads/{lead_id}", response_model=LeadOut)
def get_lead(campaign_id: int, lead_id: int, _: SupervisorDep, session: SessionDep) -> LeadOut:
    return LeadOut.model_validate(service.get_lead(session, campaign_id, lead_id))


@router.patch("/{campaign_id}/leads/{lead_id}", response_model=LeadOut)
def update_lead(
    campaign_id: int, lead_id: int, body: LeadPatch, _: SupervisorDep, session: SessionDep
) -> LeadOut:
    return LeadOut.model_validate(
        service.update_lead(session, campaign_id, lead_id, body.model_dump(exclude_none=True))
    )


@router.post(
    "/{campaign_id}/lists/{list_id}/imports",
    response_model=ImportJobOut,
    status_code=status.HTTP_202_ACCEPTED,
)
async def start_import(
    campaign_id: int,
    list_id: int,
    principal: SupervisorDep,
    session: SessionDep,
    request: Request,
    file: Annotated[UploadFile, File()],
) -> ImportJobOut:
    """Upload a CSV or XLSX lead file; the import runs as a background task and reports per-line errors."""
    content = await file.read(service.MAX_IMPORT_BYTES + 1)
    job = service.create_import_job(
        session,
        principal.actor,
        campaign_id,
        list_id,
        filename=file.filename or "upload.csv",
        content=content,
    )
    session.commit()  # the task (possibly another process) must see the job
    request.app.state.tasks.dialer.enqueue_import(job.id)
    session.refresh(job)
    return ImportJobOut.model_validate(job)


@router.get("/{campaign_id}/imports/{job_id}", response_model=ImportJobOut)
def get_import(campaign_id: int, job_id: int, _: SupervisorDep, session: SessionDep) -> ImportJobOut:
    job = session.get(ImportJob, job_id)
    if job is None or job.campaign_id != campaign_id:
        raise NotFound(f"import job {job_id} not found")
    return ImportJobOut.model_validate(job)
