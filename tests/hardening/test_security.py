"""Security properties of the running API and the FastAGI server, tested from the outside.

Login throttling, secrets kept out of logs and reprs, security headers, the CSRF double-submit check,
loopback default binds, and the FastAGI shared secret.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.app import SECURITY_HEADERS
from config.settings import DEV_AMI_SECRET, Settings
from core.clock import FixedClock
from core.models import Role
from ivr.agi import AgiChannel, AgiEnv, AgiServer
from tests.conftest import PASSWORD, TEST_SECRET

LOGIN = "/api/v1/auth/login"
ERROR_KEYS = {"error_id", "message", "details"}
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def login_as(client: TestClient, username: str, password: str) -> int:
    return client.post(LOGIN, json={"username": username, "password": password}).status_code


# ---------------------------------------------------------------- brute force


@pytest.mark.postgres
def test_repeated_wrong_passwords_lock_the_account_even_for_the_right_one(
    app_client: TestClient, make_user: Callable[..., int], settings: Settings, clock: FixedClock
) -> None:
    make_user("victim", Role.AGENT)
    statuses = [login_as(app_client, "victim", f"wrong-{i}") for i in range(settings.login_max_failures)]
    assert statuses == [401] * settings.login_max_failures
    locked = app_client.post(LOGIN, json={"username": "victim", "password": PASSWORD})
    assert locked.status_code == 429
    body = locked.json()
    assert set(body) == ERROR_KEYS
    assert 0 < body["details"]["retry_after_s"] <= settings.login_lockout_s + 1
    # The page form shares the counter: no second door.
    page = app_client.post("/login", data={"username": "victim", "password": PASSWORD})
    assert page.status_code == 429 and "cc_session" not in page.cookies
    # Once the lockout has passed, the right password works again.
    clock.advance(settings.login_lockout_s + 1)
    assert login_as(app_client, "victim", PASSWORD) == 200


@pytest.mark.postgres
def test_failures_below_the_threshold_are_forgotten_after_a_good_login(
    app_client: TestClient, make_user: Callable[..., int], settings: Settings
) -> None:
    make_user("careless", Role.AGENT)
    for _ in range(2):
        for i in range(settings.login_max_failures - 1):
            assert login_as(app_client, "careless", f"typo-{i}") == 401
        assert login_as(app_client, "careless", PASSWORD) == 200


# ---------------------------------------------------------------- secrets in logs


@pytest.mark.postgres
def test_secrets_never_reach_the_logs(
    app_client: TestClient,
    make_user: Callable[..., int],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    make_user("logged", Role.ADMIN, password="s3cret-Passw0rd-xyz")
    bad = app_client.post(LOGIN, json={"username": "logged", "password": "wrong-Passw0rd-xyz"})
    assert bad.status_code == 401
    good = app_client.post(LOGIN, json={"username": "logged", "password": "s3cret-Passw0rd-xyz"})
    token = good.json()["access_token"]
    assert app_client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert (
        app_client.get("/api/v1/auth/me", headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    )
    logging.getLogger("hardening").info("settings at startup: %s %r", settings, settings)

    secrets = {
        "password": "s3cret-Passw0rd-xyz",
        "wrong password": "wrong-Passw0rd-xyz",
        "jwt": token,
        "jwt signature": token.rsplit(".", 1)[1],
        "secret key": TEST_SECRET,
        "ami secret": DEV_AMI_SECRET,
    }
    logged = "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.__dict__.get('args')!r}" for r in caplog.records
    )
    assert caplog.records, "the access log should have recorded the requests"
    for what, value in secrets.items():
        assert value not in logged, f"{what} appears in the logs"
    for what, value in (("secret key", TEST_SECRET), ("ami secret", DEV_AMI_SECRET)):
        assert value not in repr(settings) and value not in str(settings), f"{what} in settings repr"
        assert value not in repr(settings.model_dump()), f"{what} in settings dump"


def test_agi_secret_is_masked_in_settings_repr() -> None:
    settings = Settings(agi_secret="agi-shared-s3cret")  # type: ignore[arg-type]
    assert "agi-shared-s3cret" not in repr(settings) and "agi-shared-s3cret" not in str(settings)


def test_database_password_is_masked_in_settings_repr() -> None:
    settings = Settings(database_url="postgresql+psycopg://cc:db-pa55word@db:5432/cc")
    assert "db-pa55word" not in repr(settings)


# ---------------------------------------------------------------- security headers


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/login"),  # a page
        ("GET", "/api/v1/health"),  # API success
        ("GET", "/api/v1/auth/me"),  # API 401
        ("GET", "/api/v1/no-such-route"),  # API 404
        ("POST", LOGIN),  # API 422
        ("GET", "/"),  # page redirect to login
    ],
)
def test_security_headers_on_pages_and_api(app_client: TestClient, method: str, path: str) -> None:
    response = app_client.request(method, path, json={} if method == "POST" else None, follow_redirects=False)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] in {
        "same-origin",
        "no-referrer",
        "strict-origin-when-cross-origin",
    }
    assert response.headers["X-Request-ID"]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


@pytest.mark.postgres
def test_security_headers_on_the_body_cap_refusal(app_client: TestClient) -> None:
    response = app_client.post(LOGIN, content=b"{}", headers={"Content-Length": str(10**9)})
    assert response.status_code == 413
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


# ---------------------------------------------------------------- CSRF


@pytest.mark.postgres
def test_cookie_authenticated_post_needs_the_csrf_header(
    app_client: TestClient, make_user: Callable[..., int]
) -> None:
    make_user("browser", Role.ADMIN)
    assert login_as(app_client, "browser", PASSWORD) == 200  # sets cc_session and cc_csrf
    csrf = app_client.cookies["cc_csrf"]
    body = {"name": "csrf probe"}

    assert app_client.get("/api/v1/auth/me").status_code == 200  # safe methods need no token
    for headers in ({}, {"X-CSRF-Token": ""}, {"X-CSRF-Token": csrf + "x"}, {"X-CSRF-Token": csrf[:-1]}):
        refused = app_client.post("/api/v1/campaigns", json=body, headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["error_id"] == "csrf_failed"
    # A forged cookie pair from another origin cannot help: the header must equal *our* cookie.
    forged = app_client.post(
        "/api/v1/campaigns", json=body, headers={"X-CSRF-Token": "attacker", "Cookie": "cc_csrf=other"}
    )
    assert forged.status_code in (401, 403)
    accepted = app_client.post("/api/v1/campaigns", json=body, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code != 403, accepted.text


# ---------------------------------------------------------------- default binds


@pytest.mark.parametrize("field", ["ami_host", "agi_host", "api_host"])
def test_default_bind_addresses_are_loopback(field: str) -> None:
    assert Settings.model_fields[field].default in LOOPBACK


def test_agi_server_binds_loopback_by_default() -> None:
    server = AgiServer({}, session_deadline_s=1.0)
    assert server._host in LOOPBACK  # the constructor default, used when wiring passes no host


# ---------------------------------------------------------------- FastAGI shared secret

ENV = (
    "agi_network: yes\nagi_network_script: screen{query}\nagi_request: agi://127.0.0.1:4573/screen{query}\n"
    "agi_channel: SIP/sipp-uac-00000001\nagi_language: en\nagi_type: SIP\nagi_uniqueid: testpbx-1.1\n"
    "agi_version: 20.20.1\nagi_callerid: 5551234\nagi_calleridname: unknown\nagi_callingpres: 0\n"
    "agi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\nagi_dnid: 2000\nagi_rdnis: unknown\n"
    "agi_context: inbound\nagi_extension: 2000\nagi_priority: 2\nagi_enhanced: 0.0\nagi_accountcode: \n"
    "agi_threadid: 1\nagi_arg_1: 2000\n\n"
)


async def call_agi(query: str, *, fail_screen_result: str | None = None) -> tuple[bytes, list[AgiEnv]]:
    """One FastAGI connection as Asterisk makes it; returns what the server sent and whom it called."""
    called: list[AgiEnv] = []

    async def handler(env: AgiEnv, channel: AgiChannel) -> None:
        called.append(env)
        await channel.set_variable("SCREEN_RESULT", "allow")

    async with AgiServer(
        {"screen": handler},
        port=0,
        session_deadline_s=5.0,
        shared_secret="s3cr3t",
        fail_screen_result=fail_screen_result,
        drain_timeout_s=1.0,
    ) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(ENV.format(query=query).encode())
        await writer.drain()
        received = b""
        async with asyncio.timeout(5):
            while chunk := await reader.read(4096):
                received += chunk
                if received.endswith(b"\n"):
                    writer.write(b"200 result=1\n")  # answer whatever was asked, as Asterisk would
                    await writer.drain()
        writer.write_eof()  # the server half-closed; now Asterisk hangs up too
        writer.close()
        await writer.wait_closed()
    return received, called


@pytest.mark.parametrize(
    "query", ["", "?secret=", "?secret=wrong", "?trunk=a&Secret=s3cr3t", "?secret=s3cr3tX"]
)
@pytest.mark.parametrize("fail_screen_result", [None, "block"])
async def test_agi_without_the_right_secret_is_closed_without_commands(
    query: str, fail_screen_result: str | None
) -> None:
    received, called = await call_agi(query, fail_screen_result=fail_screen_result)
    assert received == b"" and called == []


async def test_agi_with_the_right_secret_reaches_the_handler() -> None:
    received, called = await call_agi("?trunk=a&secret=s3cr3t")
    assert received == b"SET VARIABLE SCREEN_RESULT allow\n"
    assert [env.query.get("secret") for env in called] == [None]  # redacted before the handler
