"""User and API-key use cases. Services add to the session; they never commit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit, security
from core.errors import AuthenticationFailed, Conflict, NotFound, TooManyAttempts, ValidationFailed
from core.models import ApiKey, Role, User


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    max_failures: int
    lockout_s: int


def _check_password_rules(password: str) -> None:
    if len(password) < security.MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"password must be at least {security.MIN_PASSWORD_LENGTH} characters",
            details={"field": "password"},
        )


def create_user(
    session: Session,
    actor: audit.Actor,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str = "",
    language: str = "zh-CN",
    extension: str | None = None,
) -> User:
    username = username.strip()
    if not username:
        raise ValidationFailed("username is required", details={"field": "username"})
    _check_password_rules(password)
    exists = session.scalar(select(func.count()).select_from(User).where(User.username == username))
    if exists:
        raise Conflict(f"user {username!r} already exists", details={"field": "username"})
    user = User(
        username=username,
        password_hash=security.hash_password(password),
        role=role,
        display_name=display_name or username,
        language=language,
        extension=extension,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        details={"username": username, "role": role.value},
    )
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def update_user(
    session: Session,
    actor: audit.Actor,
    user_id: int,
    *,
    role: Role | None = None,
    display_name: str | None = None,
    language: str | None = None,
    extension: str | None = None,
    is_active: bool | None = None,
    password: str | None = None,
) -> User:
    user = get_user(session, user_id)
    changes: dict[str, object] = {}
    for field, value in (
        ("role", role),
        ("display_name", display_name),
        ("language", language),
        ("extension", extension),
        ("is_active", is_active),
    ):
        if value is not None and getattr(user, field) != value:
            changes[field] = value.value if isinstance(value, Role) else value
            setattr(user, field, value)
    if password is not None:
        _check_password_rules(password)
        user.password_hash = security.hash_password(password)
        user.failed_logins = 0
        user.locked_until = None
        changes["password"] = "changed"  # never the value
    if changes:
        audit.record(
            session, actor, action="user.update", entity_type="user", entity_id=user.id, details=changes
        )
    return user


def authenticate(
    session: Session, *, username: str, password: str, now: datetime, policy: LoginPolicy
) -> User:
    """Check a password with lockout after repeated failures (brute-force throttling)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        security.burn_verify_time(password)
        raise AuthenticationFailed("invalid username or password")
    if user.locked_until is not None and user.locked_until > now:
        raise TooManyAttempts(
            "too many failed logins; try again later",
            details={"retry_after_s": int((user.locked_until - now).total_seconds()) + 1},
        )
    if not security.verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= policy.max_failures:
            user.locked_until = now + timedelta(seconds=policy.lockout_s)
            user.failed_logins = 0
        raise AuthenticationFailed("invalid username or password")
    user.failed_logins = 0
    user.locked_until = None
    return user


def create_api_key(session: Session, actor: audit.Actor, *, name: str, role: Role) -> tuple[ApiKey, str]:
    key, prefix, digest = security.new_api_key()
    row = ApiKey(name=name, prefix=prefix, key_hash=digest, role=role, created_by_id=actor.user_id)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        action="api_key.create",
        entity_type="api_key",
        entity_id=row.id,
        details={"name": name, "role": role.value, "prefix": prefix},
    )
    return row, key


def revoke_api_key(session: Session, actor: audit.Actor, key_id: int, *, now: datetime) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"api key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = now
        audit.record(session, actor, action="api_key.revoke", entity_type="api_key", entity_id=row.id)
    return row


def find_api_key(session: Session, key: str) -> ApiKey | None:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == security.api_key_hash(key)))
    if row is None or row.revoked_at is not None:
        return None
    return row
