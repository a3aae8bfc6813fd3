"""Agent workspace over HTTP against PostgreSQL: a call from login to disposition (with the engine's
ledger calls simulated), live events, preview mode, history warnings, callbacks, DNC, supervisor views,
reports and role checks."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents.models import AgentSession
from agents.service import PREVIEW_REQUESTED
from core.clock import FixedClock
from core.db import unit_of_work
from core.models import Role
from dialer import ledger
from dialer.attempts.outcome import Outcome
from dialer.attempts.tracker import AttemptFinished
from dialer.models import Attempt, Call, Callback, Campaign, Disposition, Lead
from ivr.models import NumberRule

API = "/api/v1"
Headers = dict[str, str]


@dataclass
class World:
    h: dict[str, Headers]
    ids: dict[str, int]  # users, campaigns and leads by name


@pytest.fixture
def world(
    app_client: TestClient,
    session_factory: sessionmaker[Session],
    make_user: Callable[..., int],
    login: Callable[[str], Headers],
) -> World:
    ids: dict[str, int] = {}
    for name, role in (("ann", Role.AGENT), ("bob", Role.AGENT), ("sue", Role.SUPERVISOR), ("qa", Role.QA)):
        ids[name] = make_user(name, role, display_name=name.title(), language="en")
    headers = {name: login(name) for name in ("ann", "bob", "sue", "qa")}
    app_client.cookies.clear()
    with unit_of_work(session_factory) as session:
        for name, mode in (("fiber", "progressive"), ("other", "progressive"), ("preview", "preview")):
            campaign = Campaign(
                name=name, dial_mode=mode, caller_id_number="+861062345678", company_name="Acme Fiber"
            )
            session.add(campaign)
            session.flush()
            ids[name] = campaign.id
        for name, campaign, phone in (
            ("chen", "fiber", "+8613800000001"),
            ("chen_other", "other", "+8613800000001"),
            ("wang", "fiber", "+8613800000002"),
        ):
            lead = Lead(campaign_id=ids[campaign], phone_e164=phone, name=name.title(), company="Chen Ltd")
            session.add(lead)
            session.flush()
            ids[name] = lead.id
    return World(headers, ids)


def _log_in(client: TestClient, h: Headers, campaign_id: int, ext: str, ready: bool = True) -> None:
    resp = client.post(f"{API}/agent/session", json={"campaign_id": campaign_id, "extension": ext}, headers=h)
    assert resp.status_code == 201, resp.text
    if ready:
        assert (
            client.post(f"{API}/agent/state", json={"state": "ready"}, headers=h).json()["state"] == "ready"
        )


def _connect(factory: sessionmaker[Session], clock: FixedClock, lead_id: int, ext: str, aid: str) -> None:
    """What the engine does when a customer answers and is bridged to the agent's extension."""
    with unit_of_work(factory) as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        session.add(
            Attempt(id=aid, campaign_id=lead.campaign_id, lead_id=lead.id, phone_e164=lead.phone_e164)
        )
        session.flush()
        ledger.mark_answered(session, aid, now=clock.now())
        assert ledger.mark_connected(session, aid, interface=f"Local/{ext}@agents", now=clock.now())


def _hang_up(factory: sessionmaker[Session], clock: FixedClock, aid: str, talk_s: float = 95.0) -> None:
    """The engine: the call leaves the agent (wrap-up starts), then the ledger row and CDR are closed."""
    with unit_of_work(factory) as session:
        ledger.mark_agent_done(session, aid, now=clock.now(), wrap_s=30)
        t = clock.now().timestamp()
        done = AttemptFinished(aid, Outcome.ANSWERED, t, 16, t - talk_s, t - talk_s, "", "", "", "", "")
        ledger.record_finished(session, done, now=clock.now())


def _sse(body: str) -> list[tuple[str, str]]:
    events = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":")
        if "event" in fields:
            events.append((fields["event"], fields["data"]))
    return events


def test_call_from_login_to_appointment(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    ann, ids = world.h["ann"], world.ids
    _log_in(app_client, ann, ids["fiber"], "1001")
    _connect(session_factory, clock, ids["chen"], "1001", "att-1")

    view = app_client.get(f"{API}/agent/session", headers=ann).json()
    assert view["state"] == "on_call" and view["call"]["attempt_id"] == "att-1"
    assert view["call"]["lead"]["name"] == "Chen" and view["call"]["warning"] is None
    script = view["call"]["script"]
    assert script["id"] == script["start"] and script["source"] == "sample" and script["language"] == "en"
    assert "Chen" in script["text"] and "Ann" in script["text"] and "Acme Fiber" in script["text"]

    body = app_client.get(f"{API}/agent/events", params={"max_events": 2, "poll_ms": 50}, headers=ann)
    assert body.headers["content-type"].startswith("text/event-stream")
    assert [name for name, _ in _sse(body.text)] == ["state", "screen_pop"]
    assert '"name": "Chen"' in body.text

    # The call ends while the stream is open: call_ended, then the wrap-up state.
    timer = threading.Timer(0.3, _hang_up, (session_factory, clock, "att-1"))
    timer.start()
    body = app_client.get(f"{API}/agent/events", params={"max_events": 4, "poll_ms": 50}, headers=ann)
    timer.join()
    assert [name for name, _ in _sse(body.text)] == ["state", "screen_pop", "call_ended", "state"]
    view = app_client.get(f"{API}/agent/session", headers=ann).json()
    assert view["state"] == "wrap_up" and view["wrap_remaining_s"] == 30

    stage = app_client.get(f"{API}/agent/script", params={"stage": "permission"}, headers=ann).json()
    assert stage["id"] == "permission" and stage["branches"]
    trail: list[dict[str, Any]] = []
    for sid in ("opening", "permission"):
        resp = app_client.post(f"{API}/agent/script/visit", json={"stage": sid, "trail": trail}, headers=ann)
        assert resp.status_code == 200, resp.text
        trail = resp.json()["trail"]
    assert [v["stage"] for v in trail] == ["opening", "permission"]
    bad = app_client.post(f"{API}/agent/script/visit", json={"stage": "nope", "trail": trail}, headers=ann)
    assert bad.status_code == 404

    meeting = {"at": "2026-11-25T06:00:00Z", "place": "HQ", "attendees": ["Chen"], "materials": ["quote"]}
    resp = app_client.post(
        f"{API}/agent/disposition",
        json={
            "code": "appointment",
            "grade": "A",
            "man_need": True,
            "details": meeting,
            "script_trail": trail,
        },
        headers=ann,
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["lead_status"] == "done" and resp.json()["agent_state"] == "ready"
    with session_factory() as session:
        disposition = session.scalars(select(Disposition)).one()
        assert disposition.script_trail == [
            {"stage": "opening", "at": "2026-11-23T02:00:00+00:00"},
            {"stage": "permission", "at": "2026-11-23T02:00:00+00:00"},
        ]
        assert disposition.details["place"] == "HQ" and disposition.details["at"] == meeting["at"]
        lead = session.get(Lead, ids["chen"])
        assert lead is not None and lead.grade == "A" and lead.man_need
        assert session.scalars(select(Call)).one().disposition_code == "appointment"

    history = app_client.get(f"{API}/leads/{ids['chen']}/history", headers=ann).json()
    assert history["attempts"][0]["agent_name"] == "Ann"
    assert history["calls"][0]["talk_s"] == 95
    assert history["dispositions"][0]["code"] == "appointment"
    again = app_client.post(f"{API}/agent/disposition", json={"code": "appointment"}, headers=ann)
    assert again.status_code == 409


def test_callbacks_and_validation(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    ann, bob, ids = world.h["ann"], world.h["bob"], world.ids
    _log_in(app_client, ann, ids["fiber"], "1001")
    _log_in(app_client, bob, ids["fiber"], "1002")
    _connect(session_factory, clock, ids["chen"], "1001", "att-a")
    _connect(session_factory, clock, ids["wang"], "1002", "att-b")
    no_time = app_client.post(f"{API}/agent/disposition", json={"code": "callback"}, headers=ann)
    assert no_time.status_code == 422 and no_time.json()["details"]["field"] == "callback_at"
    bad_trail = [{"stage": "opening", "at": "2026-11-23T02:00:00"}]  # naive timestamp
    resp = app_client.post(
        f"{API}/agent/disposition", json={"code": "no_contact", "script_trail": bad_trail}, headers=ann
    )
    assert resp.status_code == 422
    soon = (clock.now() + timedelta(hours=3)).isoformat()
    later = (clock.now() + timedelta(days=1)).isoformat()
    mine = {"code": "callback", "callback_at": later, "notes": "after the board meeting", "then": "paused"}
    resp = app_client.post(f"{API}/agent/disposition", json=mine, headers=ann)
    assert resp.status_code == 201 and resp.json()["lead_status"] == "callback"
    assert resp.json()["agent_state"] == "paused"
    shared = {"code": "interested", "callback_at": soon, "callback_personal": False}
    assert app_client.post(f"{API}/agent/disposition", json=shared, headers=bob).status_code == 201

    items = app_client.get(f"{API}/agent/callbacks", headers=ann).json()["items"]
    assert [(c["lead_name"], c["personal"]) for c in items] == [("Wang", False), ("Chen", True)]
    assert [
        c["lead_name"] for c in app_client.get(f"{API}/agent/callbacks", headers=bob).json()["items"]
    ] == ["Wang"]
    with session_factory() as session:
        assert len(session.scalars(select(Callback)).all()) == 2


def test_do_not_call_reaches_every_campaign(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    ann, ids = world.h["ann"], world.ids
    _log_in(app_client, ann, ids["fiber"], "1001")
    _connect(session_factory, clock, ids["chen"], "1001", "att-dnc")
    resp = app_client.post(f"{API}/agent/disposition", json={"code": "do_not_call"}, headers=ann)
    assert resp.status_code == 201 and resp.json()["lead_status"] == "dnc"
    with session_factory() as session:
        other = session.get(Lead, ids["chen_other"])
        assert other is not None and other.status == "dnc"
        rule = session.scalars(select(NumberRule)).one()
        assert (rule.value, rule.scope, rule.purpose) == ("+8613800000001", "global", "dnc")


def _add_preview_leads(factory: sessionmaker[Session], campaign_id: int, phones: list[str]) -> list[int]:
    with unit_of_work(factory) as session:
        leads = [Lead(campaign_id=campaign_id, phone_e164=p, name=f"P{p[-2:]}") for p in phones]
        session.add_all(leads)
        session.flush()
        return [lead.id for lead in leads]


def test_preview_reservation_is_exclusive(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    ann, bob, ids = world.h["ann"], world.h["bob"], world.ids
    (only,) = _add_preview_leads(session_factory, ids["preview"], ["+8613900000011"])
    _log_in(app_client, ann, ids["preview"], "2001")
    _log_in(app_client, bob, ids["preview"], "2002")
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def ask(name: str) -> None:
        barrier.wait()
        results[name] = app_client.get(f"{API}/agent/preview/next", headers=world.h[name])

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 204], [r.text for r in results.values()]
    winner = next(n for n, r in results.items() if r.status_code == 200)
    loser = "bob" if winner == "ann" else "ann"
    assert results[winner].json()["lead"]["id"] == only
    h = world.h[winner]
    assert app_client.get(f"{API}/agent/preview/next", headers=h).json()["lead"]["id"] == only  # same one
    assert app_client.get(f"{API}/agent/session", headers=h).json()["state"] == "reserved"
    assert (
        app_client.post(
            f"{API}/agent/state", json={"state": "paused", "reason": "break"}, headers=h
        ).status_code
        == 409
    )

    # Skipping gives the lead back, deferred, so nobody gets it again at once.
    assert (
        app_client.post(f"{API}/agent/preview/skip", json={"delay_minutes": 15}, headers=h).status_code == 204
    )
    assert app_client.get(f"{API}/agent/preview/next", headers=world.h[loser]).status_code == 204
    clock.advance(16 * 60)
    assert app_client.get(f"{API}/agent/preview/next", headers=world.h[loser]).json()["lead"]["id"] == only
    dial = app_client.post(f"{API}/agent/preview/dial", headers=world.h[loser])
    assert dial.status_code == 202 and dial.json()["state"] == PREVIEW_REQUESTED
    assert app_client.post(f"{API}/agent/preview/dial", headers=world.h[loser]).json() == dial.json()
    assert app_client.post(f"{API}/agent/preview/skip", headers=world.h[loser]).status_code == 409
    with session_factory() as session:
        attempt = session.scalars(select(Attempt)).one()
        assert attempt.agent_user_id == ids[loser] and attempt.state == PREVIEW_REQUESTED
        agent = session.get(AgentSession, ids[loser])
        assert agent is not None and agent.attempt_id == attempt.id and agent.lead_id == only


def test_preview_warns_about_recent_contacts(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    ann, ids = world.h["ann"], world.ids
    (lead_id,) = _add_preview_leads(session_factory, ids["preview"], ["+8613800000002"])
    with unit_of_work(session_factory) as session:  # Bob talked to this number 3 h ago in another campaign
        at = clock.now() - timedelta(hours=3)
        session.add(
            Attempt(
                id="att-bob",
                campaign_id=ids["fiber"],
                lead_id=ids["wang"],
                phone_e164="+8613800000002",
                state="ended",
                outcome="answered",
                agent_user_id=ids["bob"],
                created_at=at,
                answered_at=at,
                ended_at=at + timedelta(minutes=4),
            )
        )
    _log_in(app_client, ann, ids["preview"], "2001")
    resp = app_client.get(f"{API}/agent/preview/next", headers=ann)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["lead"]["id"] == lead_id and body["script"]["id"] == "opening"
    assert "Bob" in body["warning"]["message"] and body["warning"]["contacts"][0]["campaign_name"] == "fiber"
    assert body["history"]["other_campaigns"][0]["agent_name"] == "Bob"


def test_wallboard_and_supervisor_views(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    ids, sue, now = world.ids, world.h["sue"], clock.now()
    _log_in(app_client, world.h["ann"], ids["fiber"], "1001")
    _log_in(app_client, world.h["bob"], ids["fiber"], "1002", ready=False)
    cid, lead = ids["fiber"], ids["wang"]
    rows: list[Attempt] = []

    def add(n: int, outcome: str, ago: timedelta, state: str = "ended") -> None:
        for _ in range(n):
            at = now - ago
            live = outcome in ("answered", "abandoned") or state == "answered"
            rows.append(
                Attempt(
                    id=f"att-{len(rows)}",
                    campaign_id=cid,
                    lead_id=lead,
                    phone_e164="+8613800000002",
                    state=state,
                    outcome=outcome,
                    created_at=at,
                    answered_at=at if live else None,
                    ended_at=at if state == "ended" else None,
                )
            )

    add(3, "answered", timedelta(hours=1))
    add(1, "abandoned", timedelta(hours=1))
    add(2, "no_answer", timedelta(hours=1))
    add(1, "", timedelta(seconds=20), state="answered")  # in flight, answered
    add(1, "", timedelta(seconds=5), state="originating")
    add(94, "answered", timedelta(days=20))
    add(2, "abandoned", timedelta(days=20))
    add(5, "abandoned", timedelta(days=40))  # outside the 30 days
    with unit_of_work(session_factory) as session:
        session.add_all(rows)
        session.flush()
        for ago in (timedelta(minutes=5), timedelta(days=1)):
            session.add(Disposition(lead_id=lead, code="appointment", created_at=now - ago))
    board = app_client.get(f"{API}/supervisor/wallboard", params={"campaign_id": cid}, headers=sue).json()
    assert board["agents_by_state"] == {"paused": 1, "ready": 1} and board["calls_in_flight"] == 2
    assert (board["dialed_today"], board["answered_today"], board["appointments_today"]) == (8, 5, 1)
    assert board["answer_rate_today"] == round(4 / 6, 4)
    assert board["abandon"] == {
        "window_days": 30,
        "answered": 100,
        "abandoned": 3,
        "rate": 0.03,
        "target": 0.03,
        "remaining_abandons": 0,
        "exceeded": False,
    }
    agents = app_client.get(f"{API}/supervisor/agents", params={"campaign_id": cid}, headers=sue).json()
    assert [(a["username"], a["state"], a["pause_reason"]) for a in agents] == [
        ("ann", "ready", ""),
        ("bob", "paused", "login"),
    ]
    body = app_client.get(
        f"{API}/supervisor/events", params={"campaign_id": cid, "max_events": 3, "poll_ms": 50}, headers=sue
    )
    events = _sse(body.text)
    assert [name for name, _ in events] == ["wallboard", "state", "state"]
    assert '"calls_in_flight": 2' in events[0][1]


def test_agent_report_json_and_csv(
    app_client: TestClient,
    world: World,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
    make_user: Callable[..., int],
) -> None:
    evil = make_user("evil", Role.AGENT, display_name='=HYPERLINK("http://x")')
    ids, now = world.ids, clock.now()
    with unit_of_work(session_factory) as session:
        for agent, ago, talk in ((ids["ann"], 0, 120.0), (ids["ann"], 0, 0.0), (evil, 1, 60.0)):
            at = now - timedelta(days=ago)
            session.add(
                Call(
                    direction="outbound",
                    campaign_id=ids["fiber"],
                    lead_id=ids["chen"],
                    agent_user_id=agent,
                    started_at=at,
                    answered_at=at if talk else None,
                    talk_s=talk,
                )
            )
        session.add(
            Disposition(lead_id=ids["chen"], agent_user_id=ids["ann"], code="appointment", created_at=now)
        )
    params: dict[str, Any] = {"from": "2026-11-22", "to": "2026-11-23", "target_calls": 4}
    rows = app_client.get(f"{API}/reports/agents", params=params, headers=world.h["sue"]).json()
    assert [(r["day"], r["agent_name"], r["calls"], r["contacts"]) for r in rows] == [
        ("2026-11-22", '=HYPERLINK("http://x")', 1, 1),
        ("2026-11-23", "Ann", 2, 1),
    ]
    assert rows[1]["appointments"] == 1 and rows[1]["appointment_rate"] == 1.0
    assert rows[1]["calls_vs_target"] == 0.5 and rows[1]["talk_s"] == 120
    resp = app_client.get(f"{API}/reports/agents", params={**params, "format": "csv"}, headers=world.h["sue"])
    assert resp.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(resp.text)))
    assert table[0][:3] == ["day", "agent_user_id", "agent_name"] and len(table) == 3
    assert table[1][2] == '\'=HYPERLINK("http://x")'  # neutralised for spreadsheets
    too_long = app_client.get(f"{API}/reports/agents", params={"from": "2026-01-01"}, headers=world.h["sue"])
    assert too_long.status_code == 422


def test_roles_and_campaign_scope(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    ann, sue, qa, ids = world.h["ann"], world.h["sue"], world.h["qa"], world.ids
    for path in (
        "/supervisor/agents",
        f"/supervisor/wallboard?campaign_id={ids['fiber']}",
        "/reports/agents",
    ):
        assert app_client.get(API + path, headers=ann).status_code == 403
    assert app_client.get(f"{API}/agent/session", headers=qa).status_code == 403
    assert app_client.get(f"{API}/agent/session", headers=ann).status_code == 404  # not logged in yet
    assert app_client.get(f"{API}/leads/{ids['chen']}/history", headers=ann).status_code == 404
    _log_in(app_client, ann, ids["fiber"], "1001")
    assert app_client.get(f"{API}/leads/{ids['chen']}/history", headers=ann).status_code == 200
    other = app_client.get(f"{API}/leads/{ids['chen_other']}/history", headers=ann)
    assert other.status_code == 404 and other.json()["error_id"] == "not_found"
    assert app_client.get(f"{API}/leads/{ids['chen_other']}/history", headers=sue).status_code == 200
    pause = app_client.post(f"{API}/agent/state", json={"state": "paused", "reason": "nap"}, headers=ann)
    assert pause.status_code == 422
    # A supervisor may sit in as an agent; the extension stays unique.
    taken = app_client.post(
        f"{API}/agent/session", json={"campaign_id": ids["fiber"], "extension": "1001"}, headers=sue
    )
    assert taken.status_code == 409
    assert app_client.post(f"{API}/agent/logout", headers=ann).status_code == 204
    assert app_client.get(f"{API}/agent/session", headers=ann).status_code == 404
