"""QA reviewer pages: call search, one call's player with scorecard and comments, an agent's score trend.

The pages are shells: the server checks the role and renders the frame and the pick lists; the browser
fetches the data from the JSON API (`/api/v1/qa`, `/api/v1/recordings`) with the session cookie, so
the API stays the one place that enforces the QA rules.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from api.deps import SessionDep, SettingsDep
from api.pages.common import PageCaller, PageRoleGuard, message_page, page_user
from api.pages.i18n import MESSAGES
from api.pages.routes import render
from core.models import Role, User
from dialer.compliance.next_step import DISPOSITIONS
from dialer.models import Call, Campaign
from recordings.models import Recording

router = APIRouter(prefix="/qa", include_in_schema=False)

# Text the scripts need, handed over as a JSON data block: the CSP forbids inline scripts, not data.
JS_TEXT_PREFIXES = ("qa.answer.", "qa.js.", "qa.result.", "qa.comments.", "qa.col.", "qa.page.")
MAX_DISPOSITION_CHOICES = 200


REVIEWER_ROLES = (Role.QA, Role.SUPERVISOR, Role.ADMIN)
qa_pages = PageRoleGuard(*REVIEWER_ROLES)
QaPageDep = Annotated[PageCaller, Depends(qa_pages)]


def js_text(lang: str) -> dict[str, str]:
    """The catalogue entries the QA scripts use, in `lang` (English where a key is missing)."""
    catalog = {**MESSAGES["en"], **MESSAGES.get(lang, {})}
    return {key: text for key, text in catalog.items() if key.startswith(JS_TEXT_PREFIXES)}


def _forbidden(request: Request, user: User | None, settings: Any) -> HTMLResponse:
    return message_page(
        request, user, settings, status=403, title_key="qa.forbidden.title", body_key="qa.forbidden.body"
    )


@router.get("", response_class=HTMLResponse)
def search_page(
    request: Request, caller: QaPageDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """Call search: the filters are rendered here, the results come from /api/v1/qa/calls."""
    user = page_user(session, caller.principal)
    if not caller.allowed:
        return _forbidden(request, user, settings)
    agents = session.scalars(
        select(User).where(User.role == Role.AGENT).order_by(User.display_name, User.username)
    ).all()
    campaigns = session.scalars(select(Campaign).order_by(Campaign.name)).all()
    used_codes = session.scalars(
        select(Call.disposition_code)
        .where(Call.disposition_code != "")
        .distinct()
        .limit(MAX_DISPOSITION_CHOICES)
    ).all()
    return render(
        request,
        "qa_search.html",
        user=user,
        settings=settings,
        agents=agents,
        campaigns=campaigns,
        dispositions=sorted(set(used_codes) | DISPOSITIONS),
        js_text=js_text,
    )


@router.get("/calls/{call_id}", response_class=HTMLResponse)
def call_page(
    call_id: int, request: Request, caller: QaPageDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """One call: player with waveform and comment markers, the scorecard form, earlier reviews."""
    user = page_user(session, caller.principal)
    if not caller.allowed:
        return _forbidden(request, user, settings)
    call = session.get(Call, call_id)
    if call is None:
        return message_page(
            request,
            user,
            settings,
            status=404,
            title_key="qa.not_found.title",
            body_key="qa.call.not_found",
            id=call_id,
        )
    # The newest playable recording; a call re-ingested after a fix has more than one row.
    recording = session.scalars(
        select(Recording)
        .where(Recording.call_id == call.id, Recording.status == "processed")
        .order_by(Recording.id.desc())
        .limit(1)
    ).first()
    agent = session.get(User, call.agent_user_id) if call.agent_user_id is not None else None
    # Names for the review list; only staff write reviews, and there are few of them.
    reviewers = session.scalars(select(User).where(User.role.in_(REVIEWER_ROLES))).all()
    campaign = session.get(Campaign, call.campaign_id) if call.campaign_id is not None else None
    return render(
        request,
        "qa_call.html",
        user=user,
        settings=settings,
        call=call,
        recording=recording,
        agent=agent,
        campaign=campaign,
        people={u.id: u.display_name or u.username for u in reviewers},
        own_call=call.agent_user_id is not None and call.agent_user_id == caller.principal.user_id,
        js_text=js_text,
    )


@router.get("/agents/{user_id}", response_class=HTMLResponse)
def agent_trend_page(
    user_id: int, request: Request, caller: QaPageDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """An agent's average score, review count and auto-fails per day or week, as a table and a chart."""
    user = page_user(session, caller.principal)
    if not caller.allowed:
        return _forbidden(request, user, settings)
    agent = session.get(User, user_id)
    if agent is None:
        return message_page(
            request,
            user,
            settings,
            status=404,
            title_key="qa.not_found.title",
            body_key="qa.agent.not_found",
            id=user_id,
        )
    return render(request, "qa_agent.html", user=user, settings=settings, agent=agent, js_text=js_text)
