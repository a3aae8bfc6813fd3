"""Login, tokens, lockout, CSRF on cookie sessions, audit of admin changes, error shape."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from core.clock import FixedClock
from core.models import Role
from tests.conftest import PASSWORD


def test_login_and_me(app_client: TestClient, make_user: Callable[..., int]) -> None:
    make_user("li.lei", Role.AGENT, display_name="李雷", extension="1001")
    resp = app_client.post("/api/v1/auth/login", json={"username": "li.lei", "password": PASSWORD})
    assert resp.status_code == 200
    token = resp.json()["access_token"]
    me = app_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["display_name"] == "李雷" and me.json()["role"] == "agent"
    assert me.headers["X-Request-ID"]
    assert me.headers["X-Frame-Options"] == "DENY"


def test_wrong_password_and_lockout(
    app_client: TestClient, make_user: Callable[..., int], clock: FixedClock
) -> None:
    make_user("han.meimei", Role.AGENT)
    for _ in range(5):
        bad = app_client.post("/api/v1/auth/login", json={"username": "han.meimei", "password": "nope-nope"})
        assert bad.status_code == 401 and bad.json()["error_id"] == "authentication_failed"
    locked = app_client.post("/api/v1/auth/login", json={"username": "han.meimei", "password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["details"]["retry_after_s"] > 0
    clock.advance(301)
    ok = app_client.post("/api/v1/auth/login", json={"username": "han.meimei", "password": PASSWORD})
    assert ok.status_code == 200


def test_unknown_user_same_error(app_client: TestClient) -> None:
    resp = app_client.post("/api/v1/auth/login", json={"username": "ghost", "password": "whatever1"})
    assert resp.status_code == 401 and resp.json()["message"] == "invalid username or password"


def test_token_expiry(
    app_client: TestClient,
    make_user: Callable[..., int],
    clock: FixedClock,
    login: Callable[[str], dict[str, str]],
) -> None:
    make_user("expiring", Role.QA)
    headers = login("expiring")
    app_client.cookies.clear()
    assert app_client.get("/api/v1/auth/me", headers=headers).status_code == 200
    clock.advance(12 * 3600 + 1)
    resp = app_client.get("/api/v1/auth/me", headers=headers)
    assert resp.status_code == 401 and resp.json()["error_id"] == "token_expired"


def test_cookie_session_needs_csrf_for_writes(
    app_client: TestClient, make_user: Callable[..., int], login: Callable[[str], dict[str, str]]
) -> None:
    make_user("boss", Role.ADMIN)
    login("boss")  # sets cc_session and cc_csrf cookies on the client
    assert app_client.get("/api/v1/users").status_code == 200
    body = {"username": "new.agent", "password": "long-enough-pw", "role": "agent"}
    refused = app_client.post("/api/v1/users", json=body)
    assert refused.status_code == 403 and refused.json()["error_id"] == "csrf_failed"
    csrf = app_client.cookies.get("cc_csrf")
    accepted = app_client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf or ""})
    assert accepted.status_code == 201


def test_admin_changes_are_audited(app_client: TestClient, role_headers: dict[Role, dict[str, str]]) -> None:
    admin = role_headers[Role.ADMIN]
    created = app_client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "zhang.san", "password": "s3cret-pass", "role": "agent"},
    )
    assert created.status_code == 201
    uid = created.json()["id"]
    app_client.patch(
        f"/api/v1/users/{uid}", headers=admin, json={"role": "supervisor", "password": "another-pw"}
    )
    log = app_client.get("/api/v1/audit-log", headers=admin, params={"entity_type": "user"}).json()
    actions = [(e["action"], e["entity_id"]) for e in log["items"]]
    assert ("user.create", str(uid)) in actions and ("user.update", str(uid)) in actions
    update = next(e for e in log["items"] if e["action"] == "user.update")
    assert update["details"] == {"role": "supervisor", "password": "changed"}
    assert update["actor_label"] == "user:admin1"
    # A demotion applies at once even to tokens issued before it.
    demoted = app_client.get(f"/api/v1/users/{uid}", headers=admin).json()
    assert demoted["role"] == "supervisor"


def test_validation_errors_have_the_documented_shape(
    app_client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    resp = app_client.post(
        "/api/v1/users",
        headers=role_headers[Role.ADMIN],
        json={"username": "x y", "password": "short", "role": "king"},
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["error_id"] == "validation_failed"
    assert {tuple(d["loc"])[-1] for d in body["details"]} >= {"username", "password", "role"}
    dup = app_client.post(
        "/api/v1/users",
        headers=role_headers[Role.ADMIN],
        json={"username": "agent1", "password": "long-enough", "role": "agent"},
    )
    assert dup.status_code == 409 and dup.json()["error_id"] == "conflict"
    missing = app_client.get("/api/v1/users/999", headers=role_headers[Role.ADMIN])
    assert missing.status_code == 404 and missing.json()["error_id"] == "not_found"


def test_oversized_body_rejected(app_client: TestClient, role_headers: dict[Role, dict[str, str]]) -> None:
    resp = app_client.post(
        "/api/v1/users", headers={**role_headers[Role.ADMIN], "Content-Length": str(10**9)}, content=b"{}"
    )
    assert resp.status_code == 413 and resp.json()["error_id"] == "payload_too_large"
