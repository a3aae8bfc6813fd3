"""Login form, role home redirects, open-redirect refusal, language switch, security headers on pages."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from core.models import Role
from tests.conftest import PASSWORD


def test_form_login_redirects_by_role_and_sets_cookies(
    app_client: TestClient, make_user: Callable[..., int]
) -> None:
    make_user("wang.agent", Role.AGENT, display_name="王坐席")
    page = app_client.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    resp = app_client.post(
        "/login", data={"username": "wang.agent", "password": PASSWORD}, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/agent"
    assert app_client.cookies.get("cc_session") and app_client.cookies.get("cc_csrf")
    home = app_client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/agent"


def test_wrong_password_shows_form_error_in_english(
    app_client: TestClient, make_user: Callable[..., int]
) -> None:
    make_user("li.qa", Role.QA)
    resp = app_client.post("/login?lang=en", data={"username": "li.qa", "password": "wrong-one"})
    assert resp.status_code == 401 and "Wrong username or password" in resp.text


def test_next_url_must_be_local(app_client: TestClient, make_user: Callable[..., int]) -> None:
    make_user("boss2", Role.ADMIN)
    for evil in ("https://evil.example/", "//evil.example", "/\\evil"):
        resp = app_client.post(
            "/login", data={"username": "boss2", "password": PASSWORD, "next": evil}, follow_redirects=False
        )
        assert resp.headers["location"] == "/wallboard", evil
    ok = app_client.post(
        "/login",
        data={"username": "boss2", "password": PASSWORD, "next": "/admin/campaigns"},
        follow_redirects=False,
    )
    assert ok.headers["location"] == "/admin/campaigns"


def test_anonymous_page_visit_goes_to_login(app_client: TestClient) -> None:
    resp = app_client.get("/", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/login?next=/"
