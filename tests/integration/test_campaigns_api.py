"""Campaign, list and lead CRUD plus lead import through the API against PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from core.audit import Actor
from core.clock import FixedClock
from core.db import unit_of_work
from core.models import Role
from dialer import service
from dialer.models import ImportJob
from dialer.tasks import run_import
from ivr.models import NumberRule

CAMPAIGN = {
    "name": "春季企业专线",
    "caller_id_number": "010 6234 5678",
    "company_name": "星河通信",
    "callback_number": "4008001234",
    "dial_mode": "predictive",
}


def _campaign(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    resp = client.post("/api/v1/campaigns", json=CAMPAIGN, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_campaign_crud_and_caller_id_normalised(
    app_client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    sup = role_headers[Role.SUPERVISOR]
    campaign = _campaign(app_client, sup)
    assert campaign["caller_id_number"] == "+861062345678" and campaign["status"] == "paused"
    assert app_client.post("/api/v1/campaigns", json=CAMPAIGN, headers=sup).status_code == 409
    bad = app_client.post(
        "/api/v1/campaigns", json={**CAMPAIGN, "name": "x", "caller_id_number": "12345"}, headers=sup
    )
    assert bad.status_code == 422 and bad.json()["details"]["field"] == "caller_id_number"
    too_short_ring = app_client.post(
        "/api/v1/campaigns", json={**CAMPAIGN, "name": "y", "ring_timeout_s": 10}, headers=sup
    )
    assert too_short_ring.status_code == 422
    patched = app_client.patch(f"/api/v1/campaigns/{campaign['id']}", json={"status": "active"}, headers=sup)
    assert patched.json()["status"] == "active"
    assert app_client.get("/api/v1/campaigns", headers=role_headers[Role.AGENT]).json()["total"] == 1


def test_leads_add_validate_dnc(
    app_client: TestClient, role_headers: dict[Role, dict[str, str]], session_factory: sessionmaker[Session]
) -> None:
    sup = role_headers[Role.SUPERVISOR]
    cid = _campaign(app_client, sup)["id"]
    with unit_of_work(session_factory) as session:
        session.add(NumberRule(purpose="dnc", kind="exact", value="+8613900000000", action="block"))
    ok = app_client.post(
        f"/api/v1/campaigns/{cid}/leads", json={"phone": "138-1234-5678", "name": "张伟"}, headers=sup
    )
    assert ok.status_code == 201 and ok.json()["phone_e164"] == "+8613812345678"
    dup = app_client.post(f"/api/v1/campaigns/{cid}/leads", json={"phone": "+8613812345678"}, headers=sup)
    assert dup.status_code == 409
    invalid = app_client.post(f"/api/v1/campaigns/{cid}/leads", json={"phone": "12345"}, headers=sup)
    assert invalid.status_code == 422 and invalid.json()["details"]["field"] == "phone"
    dnc = app_client.post(f"/api/v1/campaigns/{cid}/leads", json={"phone": "13900000000"}, headers=sup)
    assert dnc.status_code == 422 and dnc.json()["details"]["reason"] == "dnc"
    lead_id = ok.json()["id"]
    graded = app_client.patch(
        f"/api/v1/campaigns/{cid}/leads/{lead_id}", json={"grade": "A", "man_need": True}, headers=sup
    )
    assert graded.json()["grade"] == "A" and graded.json()["man_need"] is True


def test_import_reports_lines_and_imports_the_rest(
    app_client: TestClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    sup = role_headers[Role.SUPERVISOR]
    cid = _campaign(app_client, sup)["id"]
    list_id = app_client.post(f"/api/v1/campaigns/{cid}/lists", json={"name": "十一月"}, headers=sup).json()[
        "id"
    ]
    rows = (
        ["电话,联系人,公司"]
        + [f"1381000{i:04d},客户{i},公司{i}" for i in range(300)]
        + ["999,坏,坏", "1381000,短,短"]
    )
    data = "\n".join(rows).encode("gbk")
    resp = app_client.post(
        f"/api/v1/campaigns/{cid}/lists/{list_id}/imports",
        headers=sup,
        files={"file": ("名单.csv", data, "text/csv")},
    )
    assert resp.status_code == 202, resp.text
    job = app_client.get(f"/api/v1/campaigns/{cid}/imports/{resp.json()['id']}", headers=sup).json()
    assert (job["status"], job["imported"], job["rejected"], job["total_rows"]) == ("done", 300, 2, 302)
    assert [e["line"] for e in job["errors"]] == [302, 303]
    leads = app_client.get(f"/api/v1/campaigns/{cid}/leads", headers=sup, params={"limit": 1}).json()
    assert leads["total"] == 300
    assert (
        app_client.get(f"/api/v1/campaigns/{cid}/leads", headers=role_headers[Role.AGENT]).status_code == 403
    )


def test_import_resumes_after_a_killed_worker_without_duplicates(
    app_client: TestClient,
    role_headers: dict[Role, dict[str, str]],
    session_factory: sessionmaker[Session],
    clock: FixedClock,
) -> None:
    sup = role_headers[Role.SUPERVISOR]
    cid = _campaign(app_client, sup)["id"]
    list_id = app_client.post(f"/api/v1/campaigns/{cid}/lists", json={"name": "L"}, headers=sup).json()["id"]
    data = ("phone\n" + "\n".join(f"1391000{i:04d}" for i in range(250))).encode()
    with unit_of_work(session_factory) as session:
        job_id = service.create_import_job(
            session, Actor(None, "t"), cid, list_id, filename="a.csv", content=data
        ).id
    # First worker commits one batch, then "dies" in the middle of the second (its transaction rolls back).
    with unit_of_work(session_factory) as session:
        service.run_import_batch(session, job_id, region="CN", now=clock.now(), batch_size=100)
    try:
        with unit_of_work(session_factory) as session:
            service.run_import_batch(session, job_id, region="CN", now=clock.now(), batch_size=100)
            raise KeyboardInterrupt  # the worker is killed before commit
    except KeyboardInterrupt:
        pass
    run_import(session_factory, clock, job_id, region="CN", batch_size=100)
    with session_factory() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        assert (job.status, job.imported, job.rejected, job.processed_rows) == ("done", 250, 0, 250)
        assert service.count_leads(session, cid) == 250
