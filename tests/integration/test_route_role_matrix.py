"""Walk every API route × every role: guarded routes admit exactly their roles, others get 403."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api.app import PUBLIC_PATHS
from api.introspect import guards_of, iter_api_routes
from core.models import Role


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_is_guarded_or_public(app_client: TestClient) -> None:
    unguarded = [
        (r.path, sorted(r.methods))
        for r in iter_api_routes(app_client.app)  # type: ignore[arg-type]
        if not guards_of(r.dependant)
        and r.path not in PUBLIC_PATHS
        and "/docs" not in r.path
        and not r.path.endswith("openapi.json")
    ]
    assert unguarded == []


def test_route_role_matrix(app_client: TestClient, role_headers: dict[Role, dict[str, str]]) -> None:
    checked = 0
    for route in iter_api_routes(app_client.app):  # type: ignore[arg-type]
        guards = guards_of(route.dependant)
        if not guards:
            continue
        allowed = frozenset.intersection(*(g.roles for g in guards))
        for method in route.methods - {"HEAD", "OPTIONS"}:
            url = _concrete(route.path)
            anonymous = app_client.request(method, url, follow_redirects=False)
            if url.startswith("/api/"):
                assert anonymous.status_code == 401, (method, url, anonymous.text)
                assert set(anonymous.json()) == {"error_id", "message", "details"}
            else:  # pages send anonymous visitors to the login form
                assert anonymous.status_code == 303, (method, url, anonymous.text)
                assert anonymous.headers["location"].startswith("/login?next=")
            for role, headers in role_headers.items():
                resp = app_client.request(method, url, headers=headers, json={}, follow_redirects=False)
                if role in allowed:
                    assert resp.status_code not in (401, 403), (method, url, role, resp.text)
                else:
                    assert resp.status_code == 403, (method, url, role, resp.text)
                    assert resp.json()["error_id"] == "permission_denied"
                assert resp.status_code < 500, (method, url, role, resp.text)
                checked += 1
    # Every guarded method was tried with every role; the foundation alone has 9 guarded routes.
    assert checked >= 9 * len(Role)


@pytest.mark.parametrize("role", list(Role))
def test_api_key_principal_gets_its_role(
    app_client: TestClient, role_headers: dict[Role, dict[str, str]], role: Role
) -> None:
    created = app_client.post(
        "/api/v1/api-keys",
        json={"name": f"svc-{role.value}", "role": role.value},
        headers=role_headers[Role.ADMIN],
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    me = app_client.get("/api/v1/auth/me", headers={"X-API-Key": key})
    assert me.status_code == 200 and me.json()["role"] == role.value
    users = app_client.get("/api/v1/users", headers={"X-API-Key": key})
    assert users.status_code == (200 if role is Role.ADMIN else 403)
    app_client.delete(f"/api/v1/api-keys/{created.json()['id']}", headers=role_headers[Role.ADMIN])
    assert app_client.get("/api/v1/auth/me", headers={"X-API-Key": key}).status_code == 401
