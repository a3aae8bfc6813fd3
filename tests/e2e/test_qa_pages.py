"""QA pages in Chromium: search a call, play and seek its recording, comment on the waveform, score it,
read the agent's trend; agents are kept out of the pages but acknowledge their review."""

from __future__ import annotations

import math
import wave
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.clock import FixedClock
from core.db import unit_of_work
from core.models import Role
from dialer.models import Attempt, Call, Campaign, Lead
from recordings.models import Recording
from recordings.processing import process_recording
from recordings.storage import LocalStorage

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Without the package the module is skipped; without the browser conftest skips each e2e test.
expect = pytest.importorskip("playwright.sync_api", reason="pip install playwright").expect
pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RATE = 8000
AUDIO_S = 12.0
STORAGE_KEY = "2026/11/21/out-qa-e2e.wav"


@dataclass(frozen=True)
class Seeded:
    call_id: int
    other_call_id: int
    recording_id: int
    agent_id: int
    call_day: str  # the call's local date, as a date input wants it


def _speech_like_wav(path: Path) -> None:
    """Twelve seconds of 8 kHz mono: tone bursts of changing loudness with pauses, like turns in a call."""
    samples = array("h")
    for n in range(int(AUDIO_S * RATE)):
        t = n / RATE
        turn = int(t // 1.5)
        level = 0.0 if turn % 4 == 3 else (0.25 + 0.2 * (turn % 3)) * abs(math.sin(math.pi * (t % 1.5) / 1.5))
        samples.append(int(32767 * level * math.sin(2 * math.pi * (220 + 40 * (turn % 3)) * t)))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())


def _seed(
    session_factory: sessionmaker[Session],
    make_user: Callable[..., int],
    storage: LocalStorage,
    clock: FixedClock,
    tmp_path: Path,
) -> Seeded:
    make_user("qa.li", Role.QA, display_name="李质检")
    agent = make_user("agent.wang", Role.AGENT, display_name="王坐席")
    other_agent = make_user("agent.zhao", Role.AGENT, display_name="赵坐席")
    # The ingest path for real: the WAV goes through the processor, which computes the waveform peaks.
    source = tmp_path / "mixmonitor.wav"
    _speech_like_wav(source)
    processed = process_recording(source, tmp_path / "processed", keep_original=False, ffmpeg=None)
    assert processed.status == "processed" and processed.metrics and processed.output_path
    storage.put(STORAGE_KEY, processed.output_path)
    metrics = {**asdict(processed.metrics), "peaks": list(processed.metrics.peaks)}
    started = clock.now() - timedelta(days=2)  # Saturday 2026-11-21, 10:00 in Beijing
    with unit_of_work(session_factory) as session:
        campaign = Campaign(name="宽带续约", caller_id_number="+861062345678")
        session.add(campaign)
        session.flush()
        lead = Lead(campaign_id=campaign.id, phone_e164="+8613812345678", name="王先生")
        session.add(lead)
        session.flush()
        calls = []
        for n, (who, talk_s) in enumerate(((agent, AUDIO_S), (other_agent, 5.0))):
            attempt = Attempt(
                id=f"att-e2e-{n}",
                campaign_id=campaign.id,
                lead_id=lead.id,
                phone_e164=lead.phone_e164,
                state="ended",
                outcome="answered",
                agent_user_id=who,
            )
            session.add(attempt)
            session.flush()
            call = Call(
                direction="outbound",
                attempt_id=attempt.id,
                campaign_id=campaign.id,
                lead_id=lead.id,
                agent_user_id=who,
                to_number=lead.phone_e164,
                started_at=started + timedelta(minutes=n),
                talk_s=talk_s,
                outcome="answered",
                disposition_code="interested",
            )
            session.add(call)
            session.flush()
            calls.append(call.id)
        recording = Recording(
            call_id=calls[0],
            attempt_id="att-e2e-0",
            storage_key=STORAGE_KEY,
            content_type=processed.content_type,
            status="processed",
            duration_s=processed.metrics.duration_s,
            metrics=metrics,
        )
        session.add(recording)
        session.flush()
        return Seeded(calls[0], calls[1], recording.id, agent, "2026-11-21")


@pytest.fixture
def seeded(
    session_factory: sessionmaker[Session],
    make_user: Callable[..., int],
    recording_storage: LocalStorage,
    clock: FixedClock,
    tmp_path: Path,
) -> Seeded:
    return _seed(session_factory, make_user, recording_storage, clock, tmp_path)


def _audio_time(page: Page) -> float:
    return float(page.evaluate("document.getElementById('qa-audio').currentTime"))


def _csrf(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "cc_csrf")


def test_qa_reviews_a_call_and_the_agent_acknowledges(
    page: Page,
    seeded: Seeded,
    login_page: Callable[..., None],
    screenshot: Callable[[str], Path],
) -> None:
    audio_statuses: list[int] = []
    page.on(
        "response",
        lambda r: (
            audio_statuses.append(r.status) if r.url.endswith(f"/{seeded.recording_id}/audio") else None
        ),
    )

    # --- search ---------------------------------------------------------------------------------
    login_page("qa.li", expect_path="/qa")
    expect(page.locator("body[data-qa-ready=search]")).to_have_count(1)
    expect(page.locator("#qa-results tbody tr")).to_have_count(2)
    page.fill("#f-from", seeded.call_day)
    page.fill("#f-to", seeded.call_day)
    page.select_option("#f-agent", str(seeded.agent_id))
    page.fill("#f-min-talk", "10")
    page.check("#f-has-recording")
    page.click("#qa-search-submit")
    rows = page.locator("#qa-results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-call-id", str(seeded.call_id))
    expect(rows.first).to_contain_text("王坐席")
    expect(rows.first).to_contain_text("宽带续约")
    expect(page.locator("#qa-page-summary")).to_contain_text("1")
    screenshot("qa_search")

    # --- the call: player, waveform, seeking ----------------------------------------------------
    with page.expect_navigation():
        rows.first.locator("a.qa-open").click()
    assert page.url.endswith(f"/qa/calls/{seeded.call_id}")
    expect(page.locator("body[data-qa-ready=call]")).to_have_count(1)
    page.wait_for_function("document.getElementById('qa-audio').readyState >= 1")
    duration = float(page.evaluate("document.getElementById('qa-audio').duration"))
    assert duration == pytest.approx(AUDIO_S, abs=0.1)
    assert 206 in audio_statuses, audio_statuses  # the browser streams with Range requests
    ranged = page.request.get(
        f"/api/v1/recordings/{seeded.recording_id}/audio", headers={"Range": "bytes=0-99"}
    )
    assert ranged.status == 206 and len(ranged.body()) == 100
    assert ranged.headers["content-range"].startswith("bytes 0-99/")
    painted = page.evaluate(
        """() => { const c = document.getElementById('qa-waveform');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
    )
    assert painted > 1000, "the waveform canvas stayed blank"

    canvas = page.locator("#qa-waveform")
    box = canvas.bounding_box()
    assert box is not None
    canvas.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
    page.wait_for_function("Math.abs(document.getElementById('qa-audio').currentTime - 6) < 0.3")

    # --- a comment at the current time, then seek away and back through its marker --------------
    page.fill("#qa-comment-text", "这里没有确认客户是否方便接听")
    page.click("#qa-comment-add")
    expect(page.locator(".qa-marker.draft")).to_have_count(1)
    at_s = float(page.locator(".qa-marker").first.get_attribute("data-at") or "nan")
    assert at_s == pytest.approx(6.0, abs=0.3)
    canvas.click(position={"x": box["width"] * 0.1, "y": box["height"] / 2})
    page.wait_for_function("document.getElementById('qa-audio').currentTime < 2")
    page.locator(".qa-marker").first.click()
    page.wait_for_function(f"Math.abs(document.getElementById('qa-audio').currentTime - {at_s}) < 0.05")
    screenshot("qa_call_commented")

    # --- the whole scorecard --------------------------------------------------------------------
    criteria = page.locator("#qa-scorecard-body .qa-criterion")
    expect(criteria).to_have_count(11)
    expect(page.locator("#qa-scorecard-body .qa-criterion.auto-fail")).to_have_count(2)
    page.click("#qa-review-submit")  # nothing answered yet: refused in the page, nothing posted
    expect(page.locator("#qa-result")).to_contain_text("11")
    ids = criteria.evaluate_all("rows => rows.map(r => r.dataset.criterion)")
    for criterion_id in ids:
        answer = "partial" if criterion_id == "courtesy_and_tone" else "met"
        page.check(f"input[name='c:{criterion_id}'][value={answer}]")
    page.fill("#qa-summary", "开场完整，语气可以更耐心。")
    page.click("#qa-review-submit")
    expect(page.locator("#qa-score")).to_contain_text("95.0%")  # courtesy (weight 10 of 100) half met
    expect(page.locator("#qa-score")).to_contain_text("合格")
    expect(page.locator("#qa-reviews tbody tr")).to_have_count(1)
    expect(page.locator("#qa-reviews tbody tr").first).to_contain_text("李质检")
    expect(page.locator(".qa-marker.draft")).to_have_count(0)
    expect(page.locator(".qa-marker")).to_have_count(1)  # the draft went in with the review
    review_id = int(page.locator("#qa-reviews tbody tr").first.get_attribute("data-review-id") or "0")

    # Now the review exists, a new comment is saved to it at once.
    canvas.click(position={"x": box["width"] * 0.75, "y": box["height"] / 2})
    page.wait_for_function("Math.abs(document.getElementById('qa-audio').currentTime - 9) < 0.3")
    page.fill("#qa-comment-text", "结束语清楚")
    page.click("#qa-comment-add")
    expect(page.locator(".qa-marker")).to_have_count(2)
    expect(page.locator("#qa-reviews tbody tr").first.locator("td").nth(4)).to_have_text("2")
    screenshot("qa_call_reviewed")
    page.reload()
    expect(page.locator("body[data-qa-ready=call]")).to_have_count(1)
    expect(page.locator(".qa-marker")).to_have_count(2)  # read back from the server

    # --- the agent's trend ----------------------------------------------------------------------
    with page.expect_navigation():
        page.click("#qa-agent-trend")
    expect(page.locator("body[data-qa-ready=trend]")).to_have_count(1)
    week = page.locator("#qa-trend-table tbody tr", has_text="95.0%")
    expect(week).to_have_count(1)
    expect(week.locator("td").nth(1)).to_have_text("1")
    expect(page.locator("#qa-trend-chart svg circle")).to_have_count(1)
    screenshot("qa_agent_trend")
    page.select_option("#t-bucket", "day")
    page.click("#qa-trend-update")
    expect(page.locator("#qa-trend-table tbody tr", has_text="95.0%")).to_contain_text("2026/11/21")

    # --- the agent: no QA pages, but acknowledges the review through the API ----------------------
    login_page("agent.wang", next="/qa", expect_path="/qa")
    expect(page.locator("#qa-message")).to_be_visible()
    expect(page.locator("#qa-search-form")).to_have_count(0)
    screenshot("qa_forbidden_for_agent")
    forbidden = page.request.get("/qa")
    assert forbidden.status == 403
    no_csrf = page.request.post(f"/api/v1/qa/reviews/{review_id}/acknowledge")
    assert no_csrf.status == 403 and no_csrf.json()["error_id"] == "csrf_failed"
    ack = page.request.post(
        f"/api/v1/qa/reviews/{review_id}/acknowledge", headers={"X-CSRF-Token": _csrf(page)}
    )
    assert ack.status == 200, ack.text()
    body: dict[str, Any] = ack.json()
    assert body["acknowledged_at"] is not None and len(body["comments"]) == 2


def test_pages_in_english_and_for_other_staff(
    page: Page,
    seeded: Seeded,
    make_user: Callable[..., int],
    login_page: Callable[..., None],
    screenshot: Callable[[str], Path],
) -> None:
    anonymous = page.request.get("/qa/calls/1", max_redirects=0)
    assert anonymous.status == 303 and anonymous.headers["location"].startswith("/login?next=")

    make_user("sup.chen", Role.SUPERVISOR, display_name="Chen", language="en")
    login_page("sup.chen", next="/qa", expect_path="/qa")
    expect(page.locator("h1")).to_have_text("QA · Call search")
    expect(page.locator("#qa-results tbody tr")).to_have_count(2)
    expect(page.locator("#qa-results tbody tr").first).to_contain_text("Not reviewed")
    screenshot("qa_search_en")

    page.goto(f"/qa/calls/{seeded.call_id}")
    expect(page.locator("body[data-qa-ready=call]")).to_have_count(1)
    expect(page.locator("#qa-scorecard-body legend").first).to_have_text("Opening")
    expect(page.locator("#qa-comments")).to_contain_text("No comments yet")
    screenshot("qa_call_en")

    missing = page.goto("/qa/calls/999999")
    assert missing is not None and missing.status == 404
    expect(page.locator("#qa-message")).to_contain_text("Call 999999 does not exist.")
    page.goto("/qa?lang=zh-CN")
    expect(page.locator("h1")).to_have_text("质检 · 通话检索")
