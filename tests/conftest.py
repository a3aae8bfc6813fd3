"""Shared fixtures: a migrated PostgreSQL test database (the real server), app and clients per role."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core import migrate
from core.audit import Actor
from core.clock import FixedClock
from core.db import Base, import_all_models, make_engine, make_session_factory, unit_of_work
from core.models import Role
from core.users import create_user

TEST_DATABASE_URL = os.environ.get(
    "CC_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/callcenter_test"
)
TEST_SECRET = "test-secret-0123456789-0123456789-abcdef"
PASSWORD = "correct-horse-battery"
SYSTEM = Actor(user_id=None, label="tests")


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist yet."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database})
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    ensure_database(TEST_DATABASE_URL)
    engine = make_engine(TEST_DATABASE_URL)
    import_all_models()
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(TEST_DATABASE_URL)
    yield engine
    engine.dispose()


def truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def session_factory(pg_engine: Engine) -> Iterator[sessionmaker[Session]]:
    truncate_all(pg_engine)
    yield make_session_factory(pg_engine)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # 10:00 in Beijing, a Monday


@pytest.fixture
def settings() -> Settings:
    return Settings(environment="test", database_url=TEST_DATABASE_URL, secret_key=TEST_SECRET)  # type: ignore[arg-type]


@pytest.fixture
def app_client(
    settings: Settings, session_factory: sessionmaker[Session], clock: FixedClock
) -> Iterator[TestClient]:
    from api.app import create_app

    app = create_app(settings, session_factory=session_factory, clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def make_user(session_factory: sessionmaker[Session]) -> Callable[..., int]:
    def _make(username: str, role: Role, password: str = PASSWORD, **kwargs: object) -> int:
        with unit_of_work(session_factory) as session:
            return create_user(session, SYSTEM, username=username, password=password, role=role, **kwargs).id  # type: ignore[arg-type]

    return _make


@pytest.fixture
def login(app_client: TestClient) -> Callable[[str], dict[str, str]]:
    def _login(username: str, password: str = PASSWORD) -> dict[str, str]:
        resp = app_client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    return _login


@pytest.fixture
def role_headers(
    app_client: TestClient, make_user: Callable[..., int], login: Callable[[str], dict[str, str]]
) -> dict[Role, dict[str, str]]:
    """A logged-in user for every role."""
    headers = {}
    for role in Role:
        make_user(f"{role.value}1", role)
        headers[role] = login(f"{role.value}1")
    app_client.cookies.clear()  # tests authenticate with explicit headers only
    return headers
