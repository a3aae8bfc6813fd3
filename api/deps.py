"""Request dependencies: the unit of work, the caller's identity, role guards, pagination."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import event
from sqlalchemy.orm import Session

from config.settings import Settings
from core import security
from core.audit import Actor
from core.clock import Clock
from core.errors import AuthenticationFailed, PermissionDenied
from core.models import Role, User
from core.users import find_api_key

# Dependencies that neither block nor touch the database are `async def`: FastAPI runs every plain `def`
# dependency in the worker-thread pool, and under load each extra hop waits for a thread and for the GIL
# (bench/api_load.py measured the difference).


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One unit of work per request: commit if the handler returned, roll back if it raised.

    Async, with the blocking end run in the thread pool: creating a Session does no I/O (it connects on
    first use, in the handler's thread), so only the end needs a thread, one hop instead of two.
    """
    session: Session = request.app.state.session_factory()
    # The identity map holds rows weakly, so a row read in one function (the user in get_principal, the
    # campaign in a service) was dropped when it returned and read again by the next `session.get`:
    # a third of next-lead's queries (bench/api_load.py). A request is short; keep what it loads.
    loaded: list[object] = []
    event.listen(session, "loaded_as_persistent", lambda _session, instance: loaded.append(instance))
    try:
        yield session
    except BaseException:
        with anyio.CancelScope(shield=True):  # a cancelled request still returns its connection
            await run_in_threadpool(_end, session, commit=False)
        raise
    with anyio.CancelScope(shield=True):
        await run_in_threadpool(_end, session, commit=True)


def _end(session: Session, *, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()  # after a failed commit this rolls back; the error still reaches the client


# scope="function": commit before the response is sent. With the default ("request") the commit ran after
# the client already had its 2xx, so an agent's next request could read the state before its previous
# write landed, and a failed commit still looked like success (bench/api_load.py found both).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ClockDep = Annotated[Clock, Depends(get_clock)]

_bearer = HTTPBearer(auto_error=False)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    user_id: int | None
    api_key_id: int | None
    label: str
    request_id: str

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.user_id, label=self.label, request_id=self.request_id)


def get_principal(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Who is calling: a user's bearer token, an `X-API-Key`, or the page session cookie."""
    request_id = getattr(request.state, "request_id", "")
    api_key = request.headers.get("x-api-key")
    if api_key:
        row = find_api_key(session, api_key)
        if row is None:
            raise AuthenticationFailed("invalid API key")
        return Principal(
            role=row.role, user_id=None, api_key_id=row.id, label=f"api_key:{row.name}", request_id=request_id
        )
    token = credentials.credentials if credentials else request.cookies.get("cc_session")
    if not token:
        raise AuthenticationFailed("authentication required")
    if credentials is None and request.method not in SAFE_METHODS:
        # Cookie-authenticated pages use the double-submit pattern: a cross-site form cannot read
        # the cc_csrf cookie, so it cannot echo it in the header.
        cookie = request.cookies.get("cc_csrf", "")
        header = request.headers.get("x-csrf-token", "")
        if not cookie or not security.constant_time_equals(cookie, header):
            raise PermissionDenied("missing or wrong CSRF token", error_id="csrf_failed")
    verifier: security.TokenVerifier = request.app.state.token_verifier
    claims = verifier.verify(token, now=clock.now())
    user = session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise AuthenticationFailed("user is not active")
    # The role comes from the database, not the token, so a demotion takes effect at once.
    return Principal(
        role=user.role, user_id=user.id, api_key_id=None, label=f"user:{user.username}", request_id=request_id
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class RoleGuard:
    """A dependency that admits only the given roles; the route×role test reads `.roles`."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, principal: PrincipalDep) -> Principal:
        if principal.role not in self.roles:
            raise PermissionDenied(
                f"role {principal.role.value!r} may not do this",
                details={"allowed_roles": sorted(r.value for r in self.roles)},
            )
        return principal


ALL_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.QA, Role.ADMIN)
admin_only = RoleGuard(Role.ADMIN)
supervisors = RoleGuard(Role.SUPERVISOR, Role.ADMIN)
qa_staff = RoleGuard(Role.QA, Role.SUPERVISOR, Role.ADMIN)
any_user = RoleGuard(*ALL_ROLES)

AdminDep = Annotated[Principal, Depends(admin_only)]
SupervisorDep = Annotated[Principal, Depends(supervisors)]
QaDep = Annotated[Principal, Depends(qa_staff)]
AnyUserDep = Annotated[Principal, Depends(any_user)]


@dataclass(frozen=True, slots=True)
class Pagination:
    limit: int
    offset: int


async def get_pagination(
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0
) -> Pagination:
    return Pagination(limit=limit, offset=offset)


PaginationDep = Annotated[Pagination, Depends(get_pagination)]
