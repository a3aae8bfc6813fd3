"""Agent and supervisor pages in Chromium against the live telephony stack.

The web server, the sandbox PBX and the dialer engine all run for real (tests/e2e/live_stack.py): an
agent logs in through the login page, logs in to a progressive campaign with an extension and goes
ready; the engine dials the one lead, the sandbox answers, the call is connected to the agent and the
page pops the lead; the agent walks two script stages, the sandbox hangs up after the talk time, the
agent books a meeting. The lead ends `done` with the new grade; the supervisor's wallboard shows the
agent and the meeting; the campaign admin page and the script editor are checked and photographed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents.models import AgentSession
from core.clock import FixedClock
from core.db import unit_of_work
from core.models import Role
from dialer.models import Attempt, Call, Campaign, Disposition, Lead
from dialer.sandbox.callmodel import CallModel, FarEnd
from tests.e2e.live_stack import LiveStack

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Without the package the module is skipped; without the browser conftest skips each e2e test.
expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright").expect
pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ALWAYS_OPEN = {"every_day": [["00:00", "24:00"]], "breaks": []}
LEAD_NUMBER = "13800138001"
TIME_SCALE = 0.1
TALK_S = 60.0  # model seconds: six seconds of real time with TIME_SCALE
CALL_TIMEOUT_MS = 20_000


@dataclass(frozen=True)
class Seeded:
    campaign_id: int
    lead_id: int
    agent_id: int


@pytest.fixture
def seeded(session_factory: sessionmaker[Session], make_user: Callable[..., int]) -> Seeded:
    agent_id = make_user("agent.li", Role.AGENT, display_name="李坐席")
    make_user("sup.zhou", Role.SUPERVISOR, display_name="周主管")
    with unit_of_work(session_factory) as session:
        campaign = Campaign(
            name="企业光纤专线",
            status="active",
            dial_mode="progressive",
            caller_id_number="+861088886666",
            caller_id_name="Fiber",
            company_name="星联通信",
            callback_number="010-88886666",
            queue_name="sales",
            ring_timeout_s=15,
            calling_windows=ALWAYS_OPEN,
        )
        session.add(campaign)
        session.flush()
        lead = Lead(
            campaign_id=campaign.id,
            phone_e164=f"+86{LEAD_NUMBER}",
            name="陈总",
            company="华信物流有限公司",
            segment="logistics",
            grade="C",
            man_need=True,
            custom={"headcount": "120", "current_services": "enterprise ADSL"},
        )
        session.add(lead)
        session.flush()
        return Seeded(campaign.id, lead.id, agent_id)


@pytest.fixture
def talk_s() -> float:
    return TALK_S


@pytest.fixture
def live_stack(
    session_factory: sessionmaker[Session], clock: FixedClock, seeded: Seeded, talk_s: float
) -> Iterator[LiveStack]:
    # The lead's number always answers and talks for `talk_s`; the engine's own tick is fast.
    model = CallModel(
        overrides={LEAD_NUMBER: FarEnd.ANSWER, f"+86{LEAD_NUMBER}": FarEnd.ANSWER},
        ring_mean_s=1.0,
        ring_min_s=1.0,
        talk_mean_s=1.0,
        talk_min_s=talk_s,
    )
    stack = LiveStack(session_factory, clock, model=model, time_scale=TIME_SCALE).start()
    yield stack
    stack.stop()


def test_agent_takes_a_sandbox_call_and_books_a_meeting(
    page: Page,
    live_server: str,
    seeded: Seeded,
    live_stack: LiveStack,
    session_factory: sessionmaker[Session],
    login_page: Callable[..., None],
    screenshot: Callable[[str], Path],
) -> None:
    # --- agent: log in, campaign login with an extension, ready -----------------------------------
    login_page("agent.li", expect_path="/agent")
    expect(page.locator("#agent-console[data-ready='1']")).to_have_count(1)
    expect(page.locator("#agent-login-card")).to_be_visible()
    page.select_option("#agent-campaign", str(seeded.campaign_id))
    page.fill("#agent-extension", "1001")
    page.click("#agent-login-submit")
    state = page.locator("#agent-state")
    expect(state).to_have_attribute("data-state", "paused")
    expect(page.locator("#agent-session-info")).to_contain_text("1001")
    assert live_stack.originates == 0  # paused agents are not dialled for
    page.click("#agent-ready")
    # The engine may dial and connect within a second of "ready": either state is right here.
    expect(state).to_have_attribute("data-state", re.compile(r"^(ready|on_call)$"))
    expect(page.locator("#agent-callbacks-empty")).to_be_visible()
    screenshot("agent_console_idle")

    # --- the engine dials, the sandbox answers, the page pops the lead -----------------------------
    expect(page.locator("#agent-lead-name")).to_have_text("陈总", timeout=CALL_TIMEOUT_MS)
    expect(state).to_have_attribute("data-state", "on_call")
    expect(page.locator("#agent-lead")).to_contain_text("华信物流有限公司")
    expect(page.locator("#agent-lead")).to_contain_text("物流")  # segment label
    expect(page.locator("#agent-lead-custom")).to_contain_text("enterprise ADSL")
    expect(page.locator("#agent-lead-man .agent-yes")).to_have_count(1)  # need only
    expect(page.locator("#agent-history-empty")).to_be_visible()
    expect(page.locator("#agent-script")).to_have_attribute("data-stage", "opening")
    expect(page.locator("#agent-stage-text")).to_contain_text("李坐席")  # {agent.name} filled in
    expect(page.locator("#agent-trail li")).to_have_count(1)
    screenshot("agent_screen_pop")

    # --- two script stages, stamped by the server onto the trail ----------------------------------
    page.click("#agent-branches button[data-to='permission']")
    expect(page.locator("#agent-script")).to_have_attribute("data-stage", "permission")
    page.click("#agent-branches button[data-to='purpose']")
    expect(page.locator("#agent-script")).to_have_attribute("data-stage", "purpose")
    expect(page.locator("#agent-stage-text")).not_to_contain_text("{")
    expect(page.locator("#agent-trail li")).to_have_count(3)
    assert page.locator("#agent-trail li").evaluate_all("ns => ns.map(n => n.dataset.stage)") == [
        "opening",
        "permission",
        "purpose",
    ]
    screenshot("agent_script")

    # --- the outcome is filled in during the call; it can be saved once the PBX hangs up ----------
    page.select_option("#dispo-code", "appointment")
    expect(page.locator("#dispo-appointment")).to_be_visible()
    expect(page.locator("#dispo-callback")).to_be_hidden()
    page.fill("#dispo-appt-at", "2026-11-25T10:30")
    page.fill("#dispo-appt-place", "华信物流总部 3 楼会议室")
    page.fill("#dispo-appt-attendees", "陈总, IT 主管王工")
    page.fill("#dispo-appt-materials", "专线报价单, 案例介绍")
    page.fill("#dispo-notes", "陈总对专线稳定性关心，约周三面谈。")
    page.check("#dispo-grade-A")
    page.check("#dispo-man-money")
    page.check("#dispo-man-authority")
    expect(state).to_have_attribute("data-state", "wrap_up", timeout=CALL_TIMEOUT_MS)
    expect(page.locator("#agent-status")).to_contain_text("通话已结束")
    expect(page.locator("#dispo-submit")).to_be_enabled()
    screenshot("agent_disposition")
    page.click("#dispo-submit")
    expect(page.locator("#agent-status")).to_have_attribute("data-lead-status", "done")
    expect(page.locator("#agent-status")).to_contain_text("陈总")
    expect(state).to_have_attribute("data-state", "ready")
    expect(page.locator("#agent-workspace")).to_be_hidden()

    with unit_of_work(session_factory) as session:
        lead = session.get(Lead, seeded.lead_id)
        assert lead is not None
        assert (lead.status, lead.grade, lead.last_outcome) == ("done", "A", "appointment")
        assert (lead.man_money, lead.man_authority, lead.man_need) == (True, True, True)
        disposition = session.scalars(select(Disposition)).one()
        assert disposition.agent_user_id == seeded.agent_id
        assert [v["stage"] for v in disposition.script_trail] == ["opening", "permission", "purpose"]
        assert disposition.details["place"] == "华信物流总部 3 楼会议室"
        assert disposition.details["attendees"] == ["陈总", "IT 主管王工"]
        assert disposition.details["materials"] == ["专线报价单", "案例介绍"]
        assert disposition.details["at"].startswith("2026-11-25T02:30")  # 10:30 in Shanghai
        attempt = session.scalars(select(Attempt)).one()
        assert (attempt.state, attempt.outcome, attempt.agent_user_id) == (
            "ended",
            "answered",
            seeded.agent_id,
        )
        call = session.scalars(select(Call)).one()
        assert call.disposition_code == "appointment" and call.agent_user_id == seeded.agent_id
        agent_row = session.get(AgentSession, seeded.agent_id)
        assert agent_row is not None and agent_row.state == "ready" and agent_row.lead_id is None
    assert live_stack.originates == 1

    # --- supervisor: wallboard with the agent and today's meeting ---------------------------------
    login_page("sup.zhou", expect_path="/wallboard")
    expect(page.locator("#wallboard[data-ready='1']")).to_have_count(1)
    agent_row_cell = page.locator("#wb-agents tbody tr td.wb-agent-name")
    expect(agent_row_cell).to_have_text("李坐席")
    expect(page.locator("#wb-agents tbody tr")).to_contain_text("1001")
    expect(page.locator("#wb-logged-in")).to_have_text("1")
    expect(page.locator("#wb-appointments")).to_have_text("1")
    expect(page.locator("#wb-dialed")).to_have_text("1")
    expect(page.locator("#wb-answer-rate")).to_have_text("100.0%")
    expect(page.locator("#wb-states")).to_contain_text("就绪 1")
    report_row = page.locator("#wb-report-table tbody tr")
    expect(report_row).to_have_count(1)
    cells = report_row.locator("td")
    for column, text in ((0, "李坐席"), (1, "1"), (2, "1"), (4, "1"), (5, "100.0%")):
        expect(cells.nth(column)).to_have_text(text)  # calls, contacts, appointments, rate
    expect(page.locator("#wb-report-chart rect")).to_have_count(2)  # calls and appointments bars
    expect(page.locator("#wb-report-csv")).to_have_attribute("href", re.compile(r"format=csv"))
    screenshot("wallboard")

    # --- campaign admin: the lead is done with grade A --------------------------------------------
    page.goto("/admin/campaigns")
    expect(page.locator("#admin-campaigns[data-ready='1']")).to_have_count(1)
    row = page.locator(f"#admin-campaign-table tbody tr[data-id='{seeded.campaign_id}']")
    expect(row).to_contain_text("企业光纤专线")
    row.locator("a.admin-open").click()
    lead_row = page.locator(f"#admin-lead-table tbody tr[data-id='{seeded.lead_id}']")
    expect(lead_row.locator(".admin-lead-status")).to_have_text("已完成")
    expect(lead_row.locator(".admin-grade")).to_have_text("A")
    row.locator("button.admin-edit").click()
    expect(page.locator("#c-caller-id")).to_be_disabled()
    expect(page.locator("#c-windows")).to_have_value(re.compile(r'"every_day"'))
    screenshot("admin_campaigns")

    # --- script editor: the sample script checked and previewed; a broken body lists problems -----
    page.goto(f"/admin/scripts?campaign_id={seeded.campaign_id}")
    expect(page.locator("#admin-scripts[data-ready='1']")).to_have_count(1)
    expect(page.locator("#script-preview article[data-stage='opening']")).to_contain_text("星联通信")
    expect(page.locator("#script-problems li")).to_have_count(0)
    screenshot("admin_scripts")
    page.fill("#script-body", '{"start": "hello", "stages": {"hello": {"kind": "opening", "title": "Hi"}}}')
    page.click("#script-check")
    expect(page.locator("#script-status")).to_have_class(re.compile(r"\berror\b"))
    expect(page.locator("#script-problems")).to_contain_text("stages.hello.text")


@pytest.mark.parametrize("talk_s", [20.0])
def test_preview_dial_ends_in_a_personal_callback(
    page: Page,
    seeded: Seeded,
    live_stack: LiveStack,
    session_factory: sessionmaker[Session],
    make_user: Callable[..., int],
    clock: FixedClock,
    login_page: Callable[..., None],
    screenshot: Callable[[str], Path],
) -> None:
    colleague = make_user("agent.zhao", Role.AGENT, display_name="赵坐席")
    with unit_of_work(session_factory) as session:
        campaign = session.get(Campaign, seeded.campaign_id)
        assert campaign is not None
        campaign.dial_mode = "preview"
        # A colleague reached the same number three hours ago in another campaign.
        other = Campaign(name="宽带续约", status="paused", caller_id_number="+861062345678")
        session.add(other)
        session.flush()
        other_lead = Lead(campaign_id=other.id, phone_e164=f"+86{LEAD_NUMBER}", name="陈先生", status="done")
        session.add(other_lead)
        session.flush()
        session.add(
            Attempt(
                id="att-colleague",
                campaign_id=other.id,
                lead_id=other_lead.id,
                phone_e164=other_lead.phone_e164,
                state="ended",
                outcome="answered",
                agent_user_id=colleague,
                created_at=clock.now() - timedelta(hours=3),
            )
        )
    # Agents cannot open the supervisor pages; the page says so instead of failing.
    login_page("agent.li", expect_path="/agent")
    for path in ("/wallboard", "/admin/campaigns", "/admin/scripts"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.locator("#qa-message")).to_contain_text("supervisor")
    page.goto("/agent?lang=en")
    expect(page.locator("#agent-console[data-ready='1']")).to_have_count(1)
    expect(page.locator("#agent-login-card h1")).to_have_text("Log in to a campaign")
    page.fill("#agent-extension", "1002")
    page.click("#agent-login-submit")
    expect(page.locator("#agent-preview")).to_be_visible()
    page.click("#agent-ready")
    state = page.locator("#agent-state")
    expect(state).to_have_attribute("data-state", "ready")
    assert live_stack.originates == 0  # preview: nothing is dialled until the agent says so

    page.click("#agent-preview-next")
    expect(state).to_have_attribute("data-state", "reserved")
    expect(page.locator("#agent-lead-name")).to_have_text("陈总")
    expect(page.locator("#agent-warning")).to_be_visible()
    expect(page.locator("#agent-warning")).to_contain_text("赵坐席")
    expect(page.locator("#agent-history-list")).to_contain_text("宽带续约")
    expect(page.locator("#agent-preview-dial")).to_be_enabled()
    screenshot("agent_preview_warning")
    page.click("#agent-preview-dial")
    expect(state).to_have_attribute("data-state", "on_call", timeout=CALL_TIMEOUT_MS)
    page.select_option("#dispo-code", "callback")
    expect(page.locator("#dispo-callback")).to_be_visible()
    expect(page.locator("#dispo-appointment")).to_be_hidden()
    page.fill("#dispo-callback-at", "2026-11-24T15:00")
    page.fill("#dispo-notes", "Call back after the board meeting")
    expect(state).to_have_attribute("data-state", "wrap_up", timeout=CALL_TIMEOUT_MS)
    page.click("#dispo-submit")
    expect(page.locator("#agent-status")).to_have_attribute("data-lead-status", "callback")
    rows = page.locator("#agent-callbacks-body tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("陈总")
    expect(rows.first).to_contain_text("me")
    expect(rows.first).to_contain_text("board meeting")
    with unit_of_work(session_factory) as session:
        lead = session.get(Lead, seeded.lead_id)
        assert lead is not None and lead.status == "callback" and lead.owner_user_id == seeded.agent_id
    assert live_stack.originates == 1
