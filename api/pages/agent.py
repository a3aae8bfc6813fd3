"""Agent and supervisor pages: the agent console, the wallboard, campaign admin and the script editor.

Like the QA pages these are shells: the server checks the role and renders the frame, the pick lists
and the UI text (as a JSON data block: the CSP forbids inline scripts); the browser reads and writes
through the JSON API (`/api/v1/agent/...`, `/api/v1/supervisor/...`, `/api/v1/campaigns/...`) and the
SSE feeds, so the API stays the one place that enforces the rules.

The script editor is the exception: there is no scripts API yet, so this router carries two small
JSON endpoints of its own, `POST /admin/scripts/check` (validate a body and render every stage for a
sample lead) and `POST /admin/scripts/save` (store a new version), guarded like the API.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agents.script_samples import load_sample
from agents.scripts import RenderContext, ScriptInvalid, ScriptTree, parse_script, render_stage
from agents.service import PAUSE_REASONS
from api.deps import SessionDep, SettingsDep, SupervisorDep
from api.pages.common import PageCaller, PageRoleGuard, message_page, page_user
from api.pages.i18n import LANGUAGES, MESSAGES
from api.pages.routes import render
from core import audit
from core.errors import NotFound
from core.models import Role, User
from dialer.compliance.next_step import CALLBACK_DISPOSITIONS
from dialer.models import Campaign, Script

router = APIRouter(include_in_schema=False)

JS_TEXT_PREFIXES = ("agent.", "wb.", "admin.")
# The order agents see the built-in codes in: the goal first, then the usual outcomes.
DEFAULT_CODES = (
    "appointment",
    "callback",
    "interested",
    "decision_maker",
    "gatekeeper",
    "not_interested",
    "no_contact",
    "wrong_number",
    "do_not_call",
)
NOT_INTERESTED_REASONS = ("no_need", "has_provider", "price", "timing", "other")
DIAL_MODES = ("preview", "progressive", "ratio", "predictive")
SAMPLE_LEAD: dict[str, Any] = {
    "name": "张经理",
    "company": "华信物流有限公司",
    "segment": "sme",
    "region": "北京",
    "grade": "B",
    "man_money": True,
    "man_authority": False,
    "man_need": True,
    "custom": {"current_services": "landline"},
}

agent_pages = PageRoleGuard(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
supervisor_pages = PageRoleGuard(Role.SUPERVISOR, Role.ADMIN)
AgentPageDep = Annotated[PageCaller, Depends(agent_pages)]
SupervisorPageDep = Annotated[PageCaller, Depends(supervisor_pages)]


def js_text(lang: str) -> dict[str, str]:
    """The catalogue entries these pages' scripts use, in `lang` (English where a key is missing)."""
    catalog = {**MESSAGES["en"], **MESSAGES.get(lang, {})}
    return {key: text for key, text in catalog.items() if key.startswith(JS_TEXT_PREFIXES)}


def _forbidden(request: Request, user: User | None, settings: Any, guard: PageRoleGuard) -> HTMLResponse:
    roles = ", ".join(sorted(r.value for r in guard.roles))
    return message_page(
        request,
        user,
        settings,
        status=403,
        title_key="agent.forbidden.title",
        body_key="agent.forbidden.body",
        roles=roles,
    )


def disposition_codes(campaign: Campaign) -> list[dict[str, Any]]:
    """The codes an agent may pick on `campaign`: its own list, or the built-in ones."""
    own = [d for d in campaign.dispositions if isinstance(d, dict) and isinstance(d.get("code"), str)]
    codes = [str(d["code"]) for d in own] or list(DEFAULT_CODES)
    labels = {str(d["code"]): str(d.get("label") or "") for d in own}
    return [
        {"code": code, "label": labels.get(code, ""), "callback": code in CALLBACK_DISPOSITIONS}
        for code in codes
    ]


def _campaigns(session: Session, *, active_only: bool) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.name)
    if active_only:
        query = query.where(Campaign.status == "active")
    return list(session.scalars(query))


@router.get("/agent", response_class=HTMLResponse)
def agent_console(
    request: Request, caller: AgentPageDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """The agent console: campaign login, ready/pause, screen pop, script, disposition, callbacks."""
    user = page_user(session, caller.principal)
    if not caller.allowed:
        return _forbidden(request, user, settings, agent_pages)
    campaigns = _campaigns(session, active_only=True)
    config = {
        "campaigns": [
            {"id": c.id, "name": c.name, "dial_mode": c.dial_mode, "codes": disposition_codes(c)}
            for c in campaigns
        ],
        "pause_reasons": sorted(PAUSE_REASONS),
        "not_interested_reasons": list(NOT_INTERESTED_REASONS),
        "callback_codes": sorted(CALLBACK_DISPOSITIONS),
    }
    return render(
        request,
        "agent_console.html",
        user=user,
        settings=settings,
        campaigns=campaigns,
        pause_reasons=sorted(PAUSE_REASONS),
        config=config,
        js_text=js_text,
    )


@router.get("/wallboard", response_class=HTMLResponse)
def wallboard_page(
    request: Request,
    caller: SupervisorPageDep,
    session: SessionDep,
    settings: SettingsDep,
    campaign_id: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """Supervisor wallboard for one campaign (the first active one unless ?campaign_id=)."""
    user = page_user(session, caller.principal)
    if not caller.allowed:
        return _forbidden(request, user, settings, supervisor_pages)
    campaigns = _campaigns(session, active_only=False)
    chosen = next((c for c in campaigns if c.id == campaign_id), None)
    if chosen is None:
        chosen = next((c for c in campaigns if c.status == "active"), campaigns[0] if campaigns else None)
    return render(
        request,
        "wallboard.html",
        user=user,
        settings=settings,
        campaigns=campaigns,
        chosen=chosen,
        js_text=js_text,
    )


@router.get("/admin/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request, caller: SupervisorPageDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """Campaign list and editor, lead lists with file import and progress, the leads of a campaign."""
    user = page_user(session, caller.principal)
    if not caller.allowed:
        return _forbidden(request, user, settings, supervisor_pages)
    return render(
        request, "admin_campaigns.html", user=user, settings=settings, dial_modes=DIAL_MODES, js_text=js_text
    )


def _latest_script(session: Session, campaign_id: int, language: str) -> Script | None:
    return session.scalar(
        select(Script)
        .where(Script.campaign_id == campaign_id, Script.language == language)
        .order_by(Script.version.desc())
        .limit(1)
    )


@router.get("/admin/scripts", response_class=HTMLResponse)
def scripts_page(
    request: Request,
    caller: SupervisorPageDep,
    session: SessionDep,
    settings: SettingsDep,
    campaign_id: Annotated[int | None, Query(ge=1)] = None,
    language: Annotated[str | None, Query(max_length=8)] = None,
) -> HTMLResponse:
    """Script editor: the campaign's newest version (or the sample) as JSON, checked and previewed."""
    user = page_user(session, caller.principal)
    if not caller.allowed:
        return _forbidden(request, user, settings, supervisor_pages)
    campaigns = _campaigns(session, active_only=False)
    chosen = next((c for c in campaigns if c.id == campaign_id), campaigns[0] if campaigns else None)
    script_language = language if language in LANGUAGES else settings.default_language
    row = _latest_script(session, chosen.id, script_language) if chosen is not None else None
    body = row.body if row is not None else load_sample(script_language)
    return render(
        request,
        "admin_scripts.html",
        user=user,
        settings=settings,
        campaigns=campaigns,
        chosen=chosen,
        languages=LANGUAGES,
        script_language=script_language,
        script=row,
        body_text=json.dumps(body, ensure_ascii=False, indent=2),
        sample_lead=SAMPLE_LEAD,
        js_text=js_text,
    )


class ScriptCheckIn(BaseModel):
    body: Any = None
    campaign_id: int | None = None
    language: str = Field(default="zh-CN", max_length=8)
    lead: dict[str, Any] = Field(default_factory=dict, max_length=50)


class ScriptSaveIn(ScriptCheckIn):
    campaign_id: int | None = None
    name: str = Field(default="", max_length=128)
    publish: bool = True


def _stage_order(tree: ScriptTree) -> list[str]:
    """Reachable stages breadth-first from the start, the order a reader follows a call."""
    order, seen = [tree.start], {tree.start}
    for stage_id in order:
        stage = tree.stages[stage_id]
        for to in [*(b.to for b in stage.branches), *(r.to for r in stage.recommend)]:
            if to not in seen:
                seen.add(to)
                order.append(to)
    return order


def _check(session: Session, body: ScriptCheckIn, user: User | None) -> dict[str, Any]:
    try:
        tree = parse_script(body.body)
    except ScriptInvalid as exc:
        problems = [{"path": p.path, "code": p.code, "message": p.message} for p in exc.problems]
        return {"ok": False, "problems": problems, "stages": []}
    campaign = session.get(Campaign, body.campaign_id) if body.campaign_id is not None else None
    context = RenderContext(
        lead={**SAMPLE_LEAD, **body.lead},
        agent_name=(user.display_name or user.username) if user is not None else "",
        campaign=campaign,
        language=tree.language or body.language,
    )
    order = _stage_order(tree)
    stages = []
    for stage_id in order:
        stage = render_stage(tree, stage_id, context)
        stages.append(
            {
                "id": stage.id,
                "kind": stage.kind,
                "title": stage.title,
                "text": stage.text,
                "hints": list(stage.hints),
                "branches": [{"label": b.label, "to": b.to} for b in stage.branches],
                "recommended": [{"to": r.to, "title": r.title, "why": r.why} for r in stage.recommended],
                "objection": stage.objection,
            }
        )
    return {"ok": True, "problems": [], "stages": stages, "start": tree.start}


@router.post("/admin/scripts/check")
def check_script(body: ScriptCheckIn, principal: SupervisorDep, session: SessionDep) -> dict[str, Any]:
    """Validate a script body; when it is valid, every reachable stage rendered for a sample lead."""
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    return _check(session, body, user)


@router.post("/admin/scripts/save", status_code=status.HTTP_201_CREATED)
def save_script(body: ScriptSaveIn, principal: SupervisorDep, session: SessionDep) -> dict[str, Any]:
    """Store a valid body as the campaign's next version in its language (published unless asked not)."""
    if body.campaign_id is None or (campaign := session.get(Campaign, body.campaign_id)) is None:
        raise NotFound(f"campaign {body.campaign_id} not found")
    language = body.language if body.language in LANGUAGES else "zh-CN"
    tree = parse_script(body.body)  # ScriptInvalid answers 422 with every problem
    last = session.scalar(
        select(func.max(Script.version)).where(Script.campaign_id == campaign.id, Script.language == language)
    )
    row = Script(
        campaign_id=campaign.id,
        name=body.name or tree.title or campaign.name,
        language=language,
        version=(last or 0) + 1,
        body=dict(body.body),
        is_published=body.publish,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        principal.actor,
        action="script.save",
        entity_type="script",
        entity_id=row.id,
        details={"campaign_id": campaign.id, "language": language, "version": row.version},
    )
    return {"id": row.id, "version": row.version, "language": language, "published": row.is_published}
