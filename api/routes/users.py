"""Admin management of users and service API keys."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from api.deps import AdminDep, ClockDep, PaginationDep, SessionDep
from api.schemas import Page
from core import users
from core.models import ApiKey, Role, User

router = APIRouter(tags=["users"])


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    display_name: str
    role: Role
    language: str
    extension: str | None
    is_active: bool
    created_at: datetime


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Role
    display_name: str = Field(default="", max_length=128)
    language: str = Field(default="zh-CN", pattern=r"^(zh-CN|en)$")
    extension: str | None = Field(default=None, max_length=32, pattern=r"^[0-9A-Za-z/_-]+$")


class UserUpdate(BaseModel):
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=128)
    language: str | None = Field(default=None, pattern=r"^(zh-CN|en)$")
    extension: str | None = Field(default=None, max_length=32, pattern=r"^[0-9A-Za-z/_-]+$")
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256)


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role


class ApiKeyCreated(ApiKeyOut):
    key: str  # shown once


@router.get("/users", response_model=Page[UserOut])
def list_users(_: AdminDep, session: SessionDep, page: PaginationDep) -> Page[UserOut]:
    total = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(select(User).order_by(User.id).limit(page.limit).offset(page.offset)).all()
    return Page(
        items=[UserOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, principal: AdminDep, session: SessionDep) -> UserOut:
    user = users.create_user(
        session,
        principal.actor,
        username=body.username,
        password=body.password,
        role=body.role,
        display_name=body.display_name,
        language=body.language,
        extension=body.extension,
    )
    return UserOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: int, _: AdminDep, session: SessionDep) -> UserOut:
    return UserOut.model_validate(users.get_user(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: int, body: UserUpdate, principal: AdminDep, session: SessionDep) -> UserOut:
    user = users.update_user(session, principal.actor, user_id, **body.model_dump(exclude_none=True))
    return UserOut.model_validate(user)


@router.get("/api-keys", response_model=list[ApiKeyOut])
def list_api_keys(_: AdminDep, session: SessionDep) -> list[ApiKeyOut]:
    return [ApiKeyOut.model_validate(r) for r in session.scalars(select(ApiKey).order_by(ApiKey.id))]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def create_api_key(body: ApiKeyCreate, principal: AdminDep, session: SessionDep) -> ApiKeyCreated:
    row, key = users.create_api_key(session, principal.actor, name=body.name, role=body.role)
    return ApiKeyCreated(key=key, **ApiKeyOut.model_validate(row).model_dump())


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
def revoke_api_key(key_id: int, principal: AdminDep, session: SessionDep, clock: ClockDep) -> ApiKeyOut:
    return ApiKeyOut.model_validate(users.revoke_api_key(session, principal.actor, key_id, now=clock.now()))
