"""Schemathesis over the app's own OpenAPI, as admin: no 5xx, and every 4xx is `{error_id, message, details}`.

One test per operation; each draws positive (schema-valid) and negative (schema-violating) cases. The
run is bounded (`FUZZ_EXAMPLES` per operation); `CC_SLOW=1` raises it and lets Hypothesis explore.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from api.app import API_PREFIX, create_app
from config.settings import Settings
from core.clock import FixedClock
from core.db import make_session_factory, unit_of_work
from core.models import Role
from core.users import create_user
from tests.conftest import PASSWORD, SYSTEM, TEST_DATABASE_URL, TEST_SECRET, truncate_all

SLOW = os.environ.get("CC_SLOW") == "1"
FUZZ_EXAMPLES = 150 if SLOW else 10
SCHEMA_PATH = f"{API_PREFIX}/openapi.json"
ERROR_KEYS = {"error_id", "message", "details"}

pytestmark = pytest.mark.postgres


def _spec_and_operations() -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The OpenAPI document and (method, path) of every operation except event streams; no DB needed."""
    app = create_app(
        Settings(environment="test", secret_key="collect-only-secret-0123456789-abcdef"),  # type: ignore[arg-type]
        session_factory=sessionmaker(),
        clock=FixedClock(datetime(2026, 11, 23, tzinfo=UTC)),
    )
    streams = {
        route.path
        for route in app.routes
        if isinstance(route, APIRoute)
        and isinstance(route.response_class, type)
        and issubclass(route.response_class, StreamingResponse)
    }
    spec = app.openapi()
    operations = [
        (method.upper(), path) for path, ops in spec["paths"].items() for method in ops if path not in streams
    ]
    return spec, operations


# Built once: generating it takes ~0.8 s per app, and every test has its own app.
SPEC, OPERATIONS = _spec_and_operations()


@pytest.fixture(scope="module")
def fuzz_context(pg_engine: Engine) -> Iterator[dict[str, Any]]:
    """One app and admin for the whole module: the DB state grows as the fuzzer creates things."""
    truncate_all(pg_engine)
    session_factory = make_session_factory(pg_engine)
    settings = Settings(environment="test", database_url=TEST_DATABASE_URL, secret_key=TEST_SECRET)  # type: ignore[arg-type]
    app = create_app(
        settings, session_factory=session_factory, clock=FixedClock(datetime(2026, 11, 23, 2, tzinfo=UTC))
    )
    app.openapi_schema = SPEC  # FastAPI serves a preset schema as is
    with unit_of_work(session_factory) as session:
        admin_id = create_user(session, SYSTEM, username="fuzz-admin", password=PASSWORD, role=Role.ADMIN).id
    with TestClient(app) as client:
        login = client.post("/api/v1/auth/login", json={"username": "fuzz-admin", "password": PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    yield {"app": app, "headers": headers, "admin_id": admin_id}
    truncate_all(pg_engine)


def _spare_the_admin(case: Any, ctx: dict[str, Any]) -> None:
    """PATCH /users/{admin} could deactivate or demote the fuzzer itself: aim it at a missing user."""
    if case.method.upper() == "PATCH" and case.operation.path.endswith("/users/{user_id}"):
        params = case.path_parameters or {}
        if str(params.get("user_id")) == str(ctx["admin_id"]):
            params["user_id"] = ctx["admin_id"] + 1_000_000


def check_response(case: Any, response: Any) -> None:
    """No 5xx; a 4xx carries exactly the documented error body."""
    where = f"{case.method} {case.formatted_path}"
    assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:500]}"
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and set(body) == ERROR_KEYS, f"{where}: {body}"
        assert isinstance(body["error_id"], str) and body["error_id"], f"{where}: {body}"
        assert isinstance(body["message"], str), f"{where}: {body}"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_never_5xx_and_4xx_has_error_shape(
    method: str, path: str, fuzz_context: dict[str, Any]
) -> None:
    schema = schemathesis.openapi.from_asgi(SCHEMA_PATH, fuzz_context["app"])
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=not SLOW,  # the same cases on every CI run; the slow run explores
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the failing case is printed as is
    )
    @given(case=cases)
    def run(case: Any) -> None:
        _spare_the_admin(case, fuzz_context)
        check_response(case, case.call(headers=fuzz_context["headers"]))

    run()


# ---- The bugs masked above, one deterministic case each.


@pytest.mark.parametrize(
    ("method", "url", "json"),
    [
        ("GET", "/api/v1/campaigns/2147483648", None),
        ("GET", "/api/v1/users/2147483648", None),
        ("GET", "/api/v1/qa/calibration?call_id=2147483648", None),
    ],
)
def test_out_of_range_id_is_a_client_error(
    method: str, url: str, json: Any, app_client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    response = app_client.request(method, url, json=json, headers=role_headers[Role.ADMIN])
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == ERROR_KEYS


def test_huge_offset_is_a_client_error(
    app_client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    response = app_client.get(f"/api/v1/audit-log?offset={2**63}", headers=role_headers[Role.ADMIN])
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize("url", ["/api/v1/screening/rules?action=a%00b", "/api/v1/audit-log?action=a%00b"])
def test_nul_in_query_text_is_not_a_server_error(
    url: str, app_client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    response = app_client.get(url, headers=role_headers[Role.ADMIN])
    assert response.status_code < 500, response.text
