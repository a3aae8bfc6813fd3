"""Login and the caller's own identity."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.deps import AnyUserDep, ClockDep, SessionDep, SettingsDep
from core import security
from core.models import Role
from core.users import LoginPolicy, authenticate, get_user

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    role: Role


class Me(BaseModel):
    user_id: int | None
    label: str
    role: Role
    username: str | None = None
    display_name: str | None = None
    language: str | None = None
    extension: str | None = None


@router.post("/login", response_model=TokenResponse)
def login(
    body: LoginRequest, session: SessionDep, settings: SettingsDep, clock: ClockDep, response: Response
) -> TokenResponse:
    """Exchange a username and password for a bearer token (also set as an HttpOnly page cookie)."""
    now = clock.now()
    policy = LoginPolicy(max_failures=settings.login_max_failures, lockout_s=settings.login_lockout_s)
    try:
        user = authenticate(session, username=body.username, password=body.password, now=now, policy=policy)
    except Exception:
        # Failure counters must persist even though the request fails.
        session.commit()
        raise
    token = security.issue_token(
        user_id=user.id,
        role=user.role,
        secret=settings.secret_key.get_secret_value(),
        ttl_s=settings.token_ttl_s,
        now=now,
    )
    claims = security.decode_token(token, secret=settings.secret_key.get_secret_value(), now=now)
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
    return TokenResponse(access_token=token, expires_at=claims.expires_at, role=user.role)


@router.get("/me", response_model=Me)
def me(principal: AnyUserDep, session: SessionDep) -> Me:
    """Who the caller is."""
    if principal.user_id is None:
        return Me(user_id=None, label=principal.label, role=principal.role)
    user = get_user(session, principal.user_id)
    return Me(
        user_id=user.id,
        label=principal.label,
        role=user.role,
        username=user.username,
        display_name=user.display_name,
        language=user.language,
        extension=user.extension,
    )
