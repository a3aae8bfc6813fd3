"""Screening administration through the API: rules, CSV round trip, trunks, settings, block-from-call."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work
from core.models import Role
from dialer.models import Call
from ivr.models import ScreeningDecision


def test_rule_crud_and_validation(app_client: TestClient, role_headers: dict[Role, dict[str, str]]) -> None:
    admin = role_headers[Role.ADMIN]
    created = app_client.post(
        "/api/v1/screening/rules",
        headers=admin,
        json={"kind": "prefix", "value": "00196", "action": "challenge", "reason": "国际来电伪装"},
    )
    assert created.status_code == 201, created.text
    bad_range = app_client.post(
        "/api/v1/screening/rules",
        headers=admin,
        json={"kind": "range", "value": "1380000", "value_end": "13800"},
    )
    assert bad_range.status_code == 422 and bad_range.json()["details"]["field"] == "value_end"
    bad_value = app_client.post(
        "/api/v1/screening/rules", headers=admin, json={"kind": "exact", "value": "abc"}
    )
    assert bad_value.status_code == 422
    dnc_allow = app_client.post(
        "/api/v1/screening/rules",
        headers=admin,
        json={"purpose": "dnc", "kind": "exact", "value": "13800000000", "action": "allow"},
    )
    assert dnc_allow.status_code == 422
    bad_scope = app_client.post(
        "/api/v1/screening/rules", headers=admin, json={"kind": "exact", "value": "1", "scope": "planet:mars"}
    )
    assert bad_scope.status_code == 422
    listed = app_client.get("/api/v1/screening/rules", headers=role_headers[Role.SUPERVISOR]).json()
    assert listed["total"] == 1 and listed["items"][0]["value"] == "00196"
    assert (
        app_client.post(
            "/api/v1/screening/rules",
            headers=role_headers[Role.SUPERVISOR],
            json={"kind": "exact", "value": "1"},
        ).status_code
        == 403
    )
    rid = created.json()["id"]
    assert app_client.delete(f"/api/v1/screening/rules/{rid}", headers=admin).status_code == 204
    audit = app_client.get("/api/v1/audit-log", headers=admin, params={"entity_type": "number_rule"}).json()
    assert {e["action"] for e in audit["items"]} == {"number_rule.create", "number_rule.delete"}


def test_rule_csv_import_reports_lines_and_exports(
    app_client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    admin = role_headers[Role.ADMIN]
    csv_text = (
        "kind,value,value_end,action,scope,reason\n"
        "exact,00000000,,block,global,全零\n"
        "prefix,17900,,challenge,global,IP接入码\n"
        "range,13800000000,13800009999,block,trunk:carrier1,号段\n"
        "exact,notanumber,,block,global,bad\n"
        "weird,1,,block,global,bad kind\n"
        'pattern,0196XXXXXXXX,,challenge,global,=HYPERLINK("x")\n'
    )
    resp = app_client.post(
        "/api/v1/screening/rules/import",
        headers=admin,
        files={"file": ("rules.csv", csv_text.encode("gbk"), "text/csv")},
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["imported"] == 4 and [e["line"] for e in report["errors"]] == [5, 6]
    export = app_client.get("/api/v1/screening/rules/export", headers=role_headers[Role.SUPERVISOR])
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().splitlines()
    assert len(lines) == 5 and "'=HYPERLINK" in export.text  # formula neutralised for Excel


def test_trunks_and_settings(app_client: TestClient, role_headers: dict[Role, dict[str, str]]) -> None:
    admin = role_headers[Role.ADMIN]
    trunk = app_client.post(
        "/api/v1/screening/trunks",
        headers=admin,
        json={"name": "bank-icbc", "authorised_protected_numbers": ["95588"]},
    )
    assert trunk.status_code == 201
    assert (
        app_client.post("/api/v1/screening/trunks", headers=admin, json={"name": "bank-icbc"}).status_code
        == 409
    )
    settings = app_client.get("/api/v1/screening/settings", headers=admin).json()
    assert "10086" in settings["protected_numbers"] and settings["fail_policy"] == "allow"
    settings["bulk_caller_threshold"] = 3
    saved = app_client.put("/api/v1/screening/settings", headers=admin, json=settings)
    assert saved.json()["bulk_caller_threshold"] == 3
    assert app_client.get("/api/v1/screening/settings", headers=admin).json()["bulk_caller_threshold"] == 3
    bad = app_client.put("/api/v1/screening/settings", headers=admin, json={**settings, "bulk_window_s": 1})
    assert bad.status_code == 422


def test_block_caller_from_call_and_decision_stats(
    app_client: TestClient, role_headers: dict[Role, dict[str, str]], session_factory: sessionmaker[Session]
) -> None:
    with unit_of_work(session_factory) as session:
        call = Call(direction="inbound", from_number="+8613712345678", to_number="4008001234")
        anon = Call(direction="inbound", from_number="", to_number="4008001234")
        session.add_all([call, anon])
        session.flush()
        call_id, anon_id = call.id, anon.id
        session.add(
            ScreeningDecision(
                caller="+8613712345678",
                action="challenge",
                reasons=[{"code": "bulk_caller", "message": "burst"}],
            )
        )
    sup = role_headers[Role.SUPERVISOR]
    first = app_client.post(f"/api/v1/screening/calls/{call_id}/block", headers=sup, json={})
    again = app_client.post(f"/api/v1/screening/calls/{call_id}/block", headers=sup, json={})
    assert first.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert first.json()["value"] == "+8613712345678" and first.json()["source"] == f"call:{call_id}"
    assert (
        app_client.post(f"/api/v1/screening/calls/{anon_id}/block", headers=sup, json={}).status_code == 422
    )
    stats = app_client.get("/api/v1/screening/stats", headers=sup).json()
    assert stats["by_action"] == {"challenge": 1} and stats["by_reason"] == {"bulk_caller": 1}
    decisions = app_client.get(
        "/api/v1/screening/decisions", headers=sup, params={"caller": "+8613712345678"}
    ).json()
    assert decisions["total"] == 1
