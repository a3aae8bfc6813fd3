"""Server-rendered pages: login/logout and the shared layout. Domain pages add their own routers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.deps import ClockDep, Principal, RoleGuard, SessionDep, SettingsDep
from api.pages.i18n import pick_language, translator
from core import security
from core.errors import AuthenticationFailed, TooManyAttempts
from core.models import Role, User
from core.users import LoginPolicy, authenticate

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
router = APIRouter(include_in_schema=False)

HOME_BY_ROLE = {Role.AGENT: "/agent", Role.SUPERVISOR: "/wallboard", Role.QA: "/qa", Role.ADMIN: "/wallboard"}


def render(
    request: Request, template: str, *, user: User | None, settings: Any, **context: Any
) -> HTMLResponse:
    """Render a page in the caller's language (?lang=, then the user's, then the default)."""
    lang = pick_language(
        request.query_params.get("lang"), user.language if user else None, settings.default_language
    )
    return templates.TemplateResponse(
        request, template, {"user": user, "lang": lang, "t": translator(lang), **context}
    )


def _safe_next(url: str | None) -> str:
    # Only same-site relative paths: an open redirect after login is a phishing aid.
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, settings: SettingsDep, next: str = "/") -> HTMLResponse:
    return render(request, "login.html", user=None, settings=settings, next_url=_safe_next(next), error=None)


@router.post("/login", response_model=None)
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    now = clock.now()
    policy = LoginPolicy(max_failures=settings.login_max_failures, lockout_s=settings.login_lockout_s)
    t = translator(pick_language(request.query_params.get("lang"), None, settings.default_language))
    try:
        user = authenticate(session, username=username, password=password, now=now, policy=policy)
    except (AuthenticationFailed, TooManyAttempts) as exc:
        session.commit()  # keep the failure counter
        message = t("login.locked") if isinstance(exc, TooManyAttempts) else t("login.failed")
        page = render(
            request, "login.html", user=None, settings=settings, next_url=_safe_next(next), error=message
        )
        page.status_code = 429 if isinstance(exc, TooManyAttempts) else 401
        return page
    token = security.issue_token(
        user_id=user.id,
        role=user.role,
        secret=settings.secret_key.get_secret_value(),
        ttl_s=settings.token_ttl_s,
        now=now,
    )
    safe_next = _safe_next(next)
    target = safe_next if safe_next != "/" else HOME_BY_ROLE[user.role]
    response = RedirectResponse(target, status_code=303)
    secure = settings.environment == "production"
    response.set_cookie(
        "cc_session", token, httponly=True, samesite="strict", secure=secure, max_age=settings.token_ttl_s
    )
    response.set_cookie(
        "cc_csrf",
        security.new_csrf_token(),
        httponly=False,
        samesite="strict",
        secure=secure,
        max_age=settings.token_ttl_s,
    )
    return response


@router.get("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie("cc_session")
    response.delete_cookie("cc_csrf")
    return response


page_any_user = RoleGuard(*Role)


@router.get("/", response_model=None)
def home(principal: Annotated[Principal, Depends(page_any_user)]) -> RedirectResponse:
    return RedirectResponse(HOME_BY_ROLE[principal.role], status_code=303)
