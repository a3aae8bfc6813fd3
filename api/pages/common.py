"""What every server-rendered page router shares: the page role guard, the caller's user, message pages."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.deps import Principal, PrincipalDep
from api.pages.routes import render
from core.errors import PermissionDenied
from core.models import Role, User


@dataclass(frozen=True, slots=True)
class PageCaller:
    """Who asked for a page; a handler shows the forbidden page when `allowed` is false."""

    principal: Principal
    allowed: bool


class PageRoleGuard:
    """A role guard for pages: a browser gets a 403 page, any other client the usual JSON error.

    It carries `.roles` like `api.deps.RoleGuard`, so the route×role test reads the same policy.
    """

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, request: Request, principal: PrincipalDep) -> PageCaller:
        if principal.role in self.roles:
            return PageCaller(principal, allowed=True)
        if "text/html" in request.headers.get("accept", ""):
            return PageCaller(principal, allowed=False)
        raise PermissionDenied(
            f"role {principal.role.value!r} may not do this",
            details={"allowed_roles": sorted(r.value for r in self.roles)},
        )


def page_user(session: Session, principal: Principal) -> User | None:
    # API-key principals have no user row; they see the pages without the personal top bar.
    return session.get(User, principal.user_id) if principal.user_id is not None else None


def message_page(
    request: Request,
    user: User | None,
    settings: Any,
    *,
    status: int,
    title_key: str,
    body_key: str,
    **values: Any,
) -> HTMLResponse:
    page = render(
        request,
        "qa_message.html",
        user=user,
        settings=settings,
        title_key=title_key,
        body_key=body_key,
        values=values,
    )
    page.status_code = status
    return page
