"""QA API against PostgreSQL: call search, scorecards, reviews, comments, acknowledgement, calibration,
sampling and trends, each tried as every role that matters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import FixedClock
from core.db import unit_of_work
from core.models import AuditLog, Role
from dialer.models import Attempt, Call, Campaign, Lead
from recordings.models import QaReview, QaScorecard, Recording
from recordings.qa.scorecard import default_scorecard, score_review

API = "/api/v1/qa"
DAY = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # a Friday, 10:00 in Beijing
GOOD: dict[str, str | float] = {c.id: "met" for c in default_scorecard().criteria()}


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    users: dict[str, int]
    calls: dict[str, int]
    campaign_id: int


def _call(session: Session, *, campaign_id: int, lead_id: int, agent: int | None, **fields: Any) -> int:
    attempt = Attempt(
        id=f"att-{fields['started_at'].timestamp():.0f}-{agent}-{fields.get('talk_s', 0)}",
        campaign_id=campaign_id,
        lead_id=lead_id,
        phone_e164="+8613812345678",
        state="ended",
        outcome=fields.get("outcome", "answered"),
        agent_user_id=agent,
    )
    session.add(attempt)
    session.flush()
    call = Call(
        direction="outbound",
        attempt_id=attempt.id,
        campaign_id=campaign_id,
        lead_id=lead_id,
        agent_user_id=agent,
        to_number="+8613812345678",
        **{"outcome": "answered", **fields},
    )
    session.add(call)
    session.flush()
    return call.id


@pytest.fixture
def world(
    app_client: TestClient,
    make_user: Callable[..., int],
    login: Callable[[str], dict[str, str]],
    session_factory: sessionmaker[Session],
) -> World:
    roles = {
        "agent.a": Role.AGENT,
        "agent.b": Role.AGENT,
        "qa.one": Role.QA,
        "qa.two": Role.QA,
        "sup": Role.SUPERVISOR,
        "root": Role.ADMIN,
    }
    users = {name: make_user(name, role) for name, role in roles.items()}
    headers = {name: login(name) for name in roles}
    app_client.cookies.clear()  # authenticate with explicit headers only
    a, b = users["agent.a"], users["agent.b"]
    with unit_of_work(session_factory) as session:
        campaign = Campaign(name="秋季回访", caller_id_number="+861062345678")
        other_campaign = Campaign(name="other", caller_id_number="+861062345679")
        session.add_all([campaign, other_campaign])
        session.flush()
        lead = Lead(campaign_id=campaign.id, phone_e164="+8613812345678", name="王先生")
        session.add(lead)
        session.flush()
        kw = {"campaign_id": campaign.id, "lead_id": lead.id}
        calls = {
            "a_long": _call(
                session, agent=a, started_at=DAY, talk_s=120.0, disposition_code="interested", **kw
            ),
            "a_short": _call(
                session,
                agent=a,
                started_at=DAY + timedelta(hours=1),
                talk_s=8.0,
                disposition_code="do_not_call",
                **kw,
            ),
            "b_silent": _call(session, agent=b, started_at=DAY + timedelta(days=1), talk_s=300.0, **kw),
            "abandoned": _call(
                session, agent=None, started_at=DAY + timedelta(days=1, hours=2), outcome="abandoned", **kw
            ),
            "no_answer": _call(
                session, agent=None, started_at=DAY + timedelta(days=1, hours=3), outcome="no_answer", **kw
            ),
            "sup_own": _call(
                session, agent=users["sup"], started_at=DAY - timedelta(days=1), talk_s=60.0, **kw
            ),
        }
        session.add_all(
            [
                Recording(
                    call_id=calls["a_long"], storage_key="a_long.wav", status="processed", duration_s=130.0
                ),
                Recording(
                    call_id=calls["b_silent"],
                    storage_key="b_silent.wav",
                    status="processed",
                    duration_s=305.0,
                    metrics={"longest_silence_s": 15.2},
                ),
                Recording(call_id=calls["abandoned"], storage_key="abandoned.wav", status="pending"),
            ]
        )
        session.add(
            Call(
                direction="outbound",
                campaign_id=other_campaign.id,
                started_at=DAY,
                talk_s=50.0,
                outcome="answered",
            )
        )
        campaign_id = campaign.id
    return World(headers=headers, users=users, calls=calls, campaign_id=campaign_id)


def _scorecard_id(client: TestClient, world: World) -> int:
    cards = client.get(f"{API}/scorecards", headers=world.headers["qa.one"]).json()
    return int(next(c["id"] for c in cards if c["name"] == "outbound-default"))


def _review(
    client: TestClient, world: World, call: str, reviewer: str = "qa.one", **overrides: Any
) -> dict[str, Any]:
    body = {"call_id": world.calls[call], "scorecard_id": _scorecard_id(client, world), "answers": GOOD}
    resp = client.post(f"{API}/reviews", json={**body, **overrides}, headers=world.headers[reviewer])
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def _audit_actions(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


def test_call_search_filters_and_roles(app_client: TestClient, world: World) -> None:
    qa = world.headers["qa.one"]
    every = app_client.get(f"{API}/calls", headers=qa).json()
    assert every["total"] == 7
    starts = [row["started_at"] for row in every["items"]]
    assert starts == sorted(starts, reverse=True)
    for role in ("sup", "root"):
        assert app_client.get(f"{API}/calls", headers=world.headers[role]).status_code == 200
    denied = app_client.get(f"{API}/calls", headers=world.headers["agent.a"])
    assert denied.status_code == 403 and denied.json()["error_id"] == "permission_denied"

    def ids(**params: Any) -> set[int]:
        resp = app_client.get(f"{API}/calls", headers=qa, params=params)
        assert resp.status_code == 200, resp.text
        return {row["id"] for row in resp.json()["items"]}

    c = world.calls
    assert ids(agent_user_id=world.users["agent.a"]) == {c["a_long"], c["a_short"]}
    assert ids(disposition_code="do_not_call") == {c["a_short"]}
    assert ids(outcome="abandoned") == {c["abandoned"]}
    assert ids(min_talk_s=100) == {c["a_long"], c["b_silent"]}
    assert ids(max_talk_s=10, outcome="answered") == {c["a_short"]}
    assert ids(has_recording=True) == {c["a_long"], c["b_silent"], c["abandoned"]}
    assert len(ids(has_recording=False, campaign_id=world.campaign_id)) == 3
    window = {"from": DAY.isoformat(), "to": (DAY + timedelta(days=1)).isoformat()}
    assert ids(campaign_id=world.campaign_id, **window) == {c["a_long"], c["a_short"]}
    naive = app_client.get(f"{API}/calls", headers=qa, params={"from": "2026-11-20T00:00:00"})
    assert naive.status_code == 422  # a date without a zone is ambiguous; refused, not guessed

    row = next(r for r in every["items"] if r["id"] == c["a_long"])
    assert (row["recording_status"], row["recording_duration_s"], row["latest_score_pct"]) == (
        "processed",
        130.0,
        None,
    )
    _review(app_client, world, "a_long", answers={**GOOD, "courtesy_and_tone": "not_met"})
    _review(app_client, world, "b_silent", answers={**GOOD, "recording_disclosure": "not_met"})
    assert ids(min_score_pct=50) == {c["a_long"]}
    assert ids(max_score_pct=10) == {c["b_silent"]}
    page = app_client.get(f"{API}/calls", headers=qa, params={"agent_user_id": world.users["agent.a"]}).json()
    scored = next(r for r in page["items"] if r["id"] == c["a_long"])
    assert scored["latest_score_pct"] == 90.0 and scored["review_count"] == 1
    assert scored["latest_auto_failed"] is False and scored["recording_id"] is not None
    paged = app_client.get(f"{API}/calls", headers=qa, params={"limit": 2, "offset": 6}).json()
    assert paged["total"] == 7 and len(paged["items"]) == 1


def test_scorecards_seed_version_and_validate(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    agent = world.headers["agent.a"]
    first = app_client.get(f"{API}/scorecards", headers=agent)
    assert first.status_code == 200
    assert [(c["name"], c["body"]["lang"], c["version"]) for c in first.json()] == [
        ("outbound-default", "zh-CN", 1)
    ]
    app_client.get(f"{API}/scorecards", headers=world.headers["qa.one"])  # seeded once only
    english = app_client.get(f"{API}/scorecards", params={"lang": "en"}, headers=agent).json()
    assert [c["body"]["title"] for c in english] == ["Outbound call review"]
    assert _audit_actions(session_factory).count("qa.scorecard.seed") == 2

    form = {
        "name": "inbound-care",
        "lang": "en",
        "title": "Inbound care",
        "pass_pct": 75,
        "sections": [
            {
                "id": "greeting",
                "label": "Greeting",
                "criteria": [
                    {"id": "name", "label": "Says their name", "weight": 5},
                    {"id": "consent", "label": "Recording notice", "weight": 5, "auto_fail": True},
                ],
            }
        ],
    }
    v1 = app_client.post(f"{API}/scorecards", json=form, headers=world.headers["qa.one"])
    assert v1.status_code == 201, v1.text
    assert v1.json()["version"] == 1 and v1.json()["body"]["pass_pct"] == 75
    v2 = app_client.post(
        f"{API}/scorecards", json={**form, "title": "Inbound care v2"}, headers=world.headers["root"]
    )
    assert v2.status_code == 201 and v2.json()["version"] == 2
    active = app_client.get(f"{API}/scorecards", params={"lang": "en"}, headers=agent).json()
    assert {c["id"] for c in active} == {english[0]["id"], v2.json()["id"]}
    old = app_client.get(f"{API}/scorecards/{v1.json()['id']}", headers=agent).json()
    assert old["is_active"] is False
    assert app_client.get(f"{API}/scorecards/999", headers=agent).status_code == 404

    assert app_client.post(f"{API}/scorecards", json=form, headers=world.headers["sup"]).status_code == 403
    assert app_client.post(f"{API}/scorecards", json=form, headers=agent).status_code == 403
    criteria = form["sections"][0]["criteria"]  # type: ignore[index]
    duplicate = {**form, "sections": [{"id": "s", "label": "S", "criteria": [criteria[0], criteria[0]]}]}
    bad = app_client.post(f"{API}/scorecards", json=duplicate, headers=world.headers["qa.one"])
    assert bad.status_code == 422 and "unique" in bad.json()["message"]
    weightless = {**form, "sections": [{"id": "s", "label": "S", "criteria": [{**criteria[0], "weight": 0}]}]}
    assert (
        app_client.post(f"{API}/scorecards", json=weightless, headers=world.headers["qa.one"]).status_code
        == 422
    )
    with session_factory() as session:
        assert len(session.scalars(select(QaScorecard).where(QaScorecard.name == "inbound-care")).all()) == 2


def test_review_scoring_and_read_rules(app_client: TestClient, world: World, clock: FixedClock) -> None:
    answers: dict[str, str | float] = {
        **GOOD,
        "benefits_not_features": "na",
        "objection_handling": 0.5,
        "concrete_next_step": "partial",
    }
    review = _review(app_client, world, "a_long", answers=answers, summary="清楚的开场")
    expected = score_review(default_scorecard(), answers)
    assert review["total_pct"] == expected.total_pct and review["auto_failed"] is False
    assert review["agent_user_id"] == world.users["agent.a"]
    assert review["reviewer_user_id"] == world.users["qa.one"]
    assert review["created_at"] == clock.now().isoformat().replace("+00:00", "Z")
    assert review["passed"] is True and {s["section_id"] for s in review["section_scores"]} >= {"opening"}

    failed = _review(
        app_client, world, "a_short", reviewer="sup", answers={**GOOD, "refusal_honoured": "not_met"}
    )
    assert failed["total_pct"] == 0.0 and failed["auto_failed"] is True and failed["raw_pct"] == 100.0
    assert failed["auto_fail_items"] == ["refusal_honoured"] and failed["passed"] is False

    card = _scorecard_id(app_client, world)
    qa = world.headers["qa.one"]

    def post(**body: Any) -> Any:
        return app_client.post(
            f"{API}/reviews",
            json={"call_id": world.calls["a_long"], "scorecard_id": card, **body},
            headers=qa,
        )

    missing = post(answers={k: v for k, v in GOOD.items() if k != "courtesy_and_tone"})
    assert missing.status_code == 422 and missing.json()["details"]["missing"] == ["courtesy_and_tone"]
    assert post(answers={**GOOD, "made_up": "met"}).status_code == 422
    assert post(answers={**GOOD, "courtesy_and_tone": True}).status_code == 422  # a checkbox is not a score
    assert post(answers={**GOOD, "courtesy_and_tone": 1.5}).status_code == 422
    assert post(answers={**GOOD, "self_identification": "na"}).status_code == 422  # n/a not allowed there
    assert (
        app_client.post(
            f"{API}/reviews", json={"call_id": 9999, "scorecard_id": card, "answers": GOOD}, headers=qa
        ).status_code
        == 404
    )
    as_agent = app_client.post(
        f"{API}/reviews",
        json={"call_id": world.calls["a_long"], "scorecard_id": card, "answers": GOOD},
        headers=world.headers["agent.a"],
    )
    assert as_agent.status_code == 403
    own = app_client.post(
        f"{API}/reviews",
        json={"call_id": world.calls["sup_own"], "scorecard_id": card, "answers": GOOD},
        headers=world.headers["sup"],
    )
    assert own.status_code == 403 and "own calls" in own.json()["message"]

    rid = review["id"]
    assert (
        app_client.get(f"{API}/reviews/{rid}", headers=world.headers["agent.a"]).json()["summary"]
        == "清楚的开场"
    )
    assert app_client.get(f"{API}/reviews/{rid}", headers=world.headers["agent.b"]).status_code == 403
    assert app_client.get(f"{API}/reviews/{rid}", headers=world.headers["qa.two"]).status_code == 200
    assert app_client.get(f"{API}/reviews/9999", headers=world.headers["agent.a"]).status_code == 404

    mine = app_client.get(f"{API}/reviews", headers=world.headers["agent.a"]).json()
    assert mine["total"] == 2
    assert app_client.get(f"{API}/reviews", headers=world.headers["agent.b"]).json()["total"] == 0
    peek = app_client.get(
        f"{API}/reviews", params={"agent_user_id": world.users["agent.a"]}, headers=world.headers["agent.b"]
    )
    assert peek.status_code == 403
    by_agent = app_client.get(
        f"{API}/reviews", params={"agent_user_id": world.users["agent.a"]}, headers=qa
    ).json()
    assert [r["id"] for r in by_agent["items"]] == [failed["id"], rid]  # newest first
    later = {"from": (clock.now() + timedelta(seconds=1)).isoformat()}
    assert app_client.get(f"{API}/reviews", params=later, headers=qa).json()["total"] == 0

    replaced = app_client.post(
        f"{API}/scorecards",
        json={**default_scorecard_form(), "name": "outbound-default"},
        headers=world.headers["root"],
    )
    assert replaced.status_code == 201 and replaced.json()["version"] == 2
    stale = post(answers=GOOD)
    assert stale.status_code == 409
    # A review scored on the retired version still reads back with its breakdown.
    assert app_client.get(f"{API}/reviews/{rid}", headers=qa).json()["total_pct"] == expected.total_pct


def default_scorecard_form() -> dict[str, Any]:
    card = default_scorecard()
    return {
        "lang": card.lang,
        "title": card.title,
        "sections": [
            {
                "id": s.id,
                "label": s.label,
                "criteria": [{"id": c.id, "label": c.label, "weight": c.weight} for c in s.criteria],
            }
            for s in card.sections
        ],
    }


def test_timestamped_comments(
    app_client: TestClient, world: World, clock: FixedClock, session_factory: sessionmaker[Session]
) -> None:
    qa = world.headers["qa.one"]
    card = _scorecard_id(app_client, world)
    beyond = app_client.post(
        f"{API}/reviews",
        json={
            "call_id": world.calls["a_long"],
            "scorecard_id": card,
            "answers": GOOD,
            "comments": [{"at_s": 131, "text": "after the end"}],
        },
        headers=qa,
    )
    assert beyond.status_code == 422 and beyond.json()["details"]["duration_s"] == 130.0
    review = _review(app_client, world, "a_long", comments=[{"at_s": 12.5, "text": "没有报全名"}])
    assert (
        review["comments"][0]["at_s"] == 12.5
        and review["comments"][0]["author_user_id"] == world.users["qa.one"]
    )

    url = f"{API}/reviews/{review['id']}/comments"
    clock.advance(60)
    added = app_client.post(url, json={"at_s": 130, "text": "good close"}, headers=world.headers["qa.two"])
    assert added.status_code == 201, added.text
    assert [c["text"] for c in added.json()["comments"]] == ["没有报全名", "good close"]
    assert added.json()["comments"][1]["created_at"] == clock.now().isoformat()
    assert app_client.post(url, json={"at_s": 130.5, "text": "x"}, headers=qa).status_code == 422
    assert app_client.post(url, json={"at_s": -1, "text": "x"}, headers=qa).status_code == 422
    assert app_client.post(url, json={"at_s": 1, "text": "   "}, headers=qa).status_code == 422
    assert (
        app_client.post(url, json={"at_s": 1, "text": "me too"}, headers=world.headers["agent.a"]).status_code
        == 403
    )
    assert (
        app_client.post(f"{API}/reviews/9999/comments", json={"at_s": 1, "text": "x"}, headers=qa).status_code
        == 404
    )

    # No processed recording yet: the length is unknown, so any non-negative position is accepted.
    no_audio = _review(app_client, world, "a_short")
    late = app_client.post(
        f"{API}/reviews/{no_audio['id']}/comments", json={"at_s": 5000, "text": "x"}, headers=qa
    )
    assert late.status_code == 201
    with session_factory() as session:
        stored = session.get(QaReview, review["id"])
        assert stored is not None and len(stored.comments) == 2
    assert _audit_actions(session_factory).count("qa.review.comment") == 2


def test_acknowledge_only_by_reviewed_agent(
    app_client: TestClient, world: World, clock: FixedClock, session_factory: sessionmaker[Session]
) -> None:
    review = _review(app_client, world, "a_long")
    url = f"{API}/reviews/{review['id']}/acknowledge"
    for other in ("agent.b", "qa.one", "sup", "root"):
        resp = app_client.post(url, headers=world.headers[other])
        assert resp.status_code == 403, other
    clock.advance(3600)
    first = app_client.post(url, headers=world.headers["agent.a"])
    assert first.status_code == 200
    acknowledged_at = first.json()["acknowledged_at"]
    assert datetime.fromisoformat(acknowledged_at) == clock.now()
    clock.advance(3600)
    again = app_client.post(url, headers=world.headers["agent.a"])
    assert again.status_code == 200 and again.json()["acknowledged_at"] == acknowledged_at
    assert _audit_actions(session_factory).count("qa.review.acknowledge") == 1
    assert (
        app_client.post(f"{API}/reviews/9999/acknowledge", headers=world.headers["agent.a"]).status_code
        == 404
    )
    unassigned = _review(app_client, world, "abandoned")
    assert (
        app_client.post(
            f"{API}/reviews/{unassigned['id']}/acknowledge", headers=world.headers["agent.a"]
        ).status_code
        == 403
    )


def test_calibration_two_reviewers(app_client: TestClient, world: World) -> None:
    call = world.calls["a_long"]
    url = f"{API}/calibration"
    qa = world.headers["qa.one"]
    assert app_client.get(url, params={"call_id": call}, headers=qa).json()["pairs"] == []
    first = _review(app_client, world, "a_long", answers={**GOOD, "courtesy_and_tone": "partial"})
    alone = app_client.get(url, params={"call_id": call}, headers=qa).json()
    assert alone["reviewer_count"] == 1 and alone["pairs"] == [] and alone["max_abs_total_delta_pct"] is None
    # qa.two rescored: only their latest review is compared.
    _review(app_client, world, "a_long", reviewer="qa.two", answers=GOOD)
    second = _review(
        app_client, world, "a_long", reviewer="qa.two", answers={**GOOD, "objection_handling": "not_met"}
    )
    result = app_client.get(url, params={"call_id": call}, headers=world.headers["sup"]).json()
    assert result["reviewer_count"] == 2 and len(result["pairs"]) == 1
    pair = result["pairs"][0]
    assert (pair["review_a_id"], pair["review_b_id"]) == (first["id"], second["id"])
    assert pair["total_delta_pct"] == round(second["total_pct"] - first["total_pct"], 2)
    assert pair["abs_total_delta_pct"] == abs(pair["total_delta_pct"])
    assert sorted(pair["disagreements"]) == ["courtesy_and_tone", "objection_handling"]
    deltas = {d["criterion_id"]: d for d in pair["criterion_deltas"]}
    assert deltas["courtesy_and_tone"]["delta"] == 0.5 and deltas["objection_handling"]["delta"] == -1.0
    assert deltas["self_identification"]["delta"] == 0.0
    assert pair["section_deltas"]["conversation"] == round(100 * 25 / 35 - 100, 2)
    assert pair["auto_fail_mismatch"] is False and 0 < pair["agreement_ratio"] < 1
    assert result["max_abs_total_delta_pct"] == pair["abs_total_delta_pct"]

    _review(app_client, world, "a_long", reviewer="root", answers={**GOOD, "recording_disclosure": "not_met"})
    three = app_client.get(url, params={"call_id": call}, headers=qa).json()
    assert three["reviewer_count"] == 3 and len(three["pairs"]) == 3
    assert any(p["auto_fail_mismatch"] for p in three["pairs"])
    assert app_client.get(url, params={"call_id": call}, headers=world.headers["agent.a"]).status_code == 403
    assert app_client.get(url, params={"call_id": 9999}, headers=qa).status_code == 404


def test_agent_trend_buckets(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    a = world.users["agent.a"]
    card = _scorecard_id(app_client, world)
    # Calls on Mon 16 Nov 01:00 Beijing (still Sunday in UTC), Tue 17 Nov and Mon 23 Nov.
    starts = [
        datetime(2026, 11, 15, 17, 0, tzinfo=UTC),
        datetime(2026, 11, 17, 3, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
    ]
    with unit_of_work(session_factory) as session:
        for start, pct, failed in zip(starts, (80.0, 60.0, 0.0), (False, False, True), strict=True):
            call = Call(
                direction="outbound", agent_user_id=a, started_at=start, talk_s=90.0, outcome="answered"
            )
            session.add(call)
            session.flush()
            session.add(
                QaReview(
                    call_id=call.id,
                    scorecard_id=card,
                    reviewer_user_id=world.users["qa.one"],
                    agent_user_id=a,
                    total_pct=pct,
                    auto_failed=failed,
                )
            )
    url = f"{API}/agents/{a}/trend"
    period = {"from": "2026-11-16T00:00:00+08:00", "to": "2026-11-30T00:00:00+08:00"}
    weekly = app_client.get(url, params={**period, "bucket": "week"}, headers=world.headers["agent.a"])
    assert weekly.status_code == 200, weekly.text
    points = [
        (p["bucket_start"], p["review_count"], p["average_pct"], p["auto_fail_count"])
        for p in weekly.json()["points"]
    ]
    assert points == [
        ("2026-11-16T00:00:00+08:00", 2, 70.0, 0),
        ("2026-11-23T00:00:00+08:00", 1, 0.0, 1),
    ]
    daily = app_client.get(url, params={**period, "bucket": "day"}, headers=world.headers["qa.one"]).json()
    assert len(daily["points"]) == 14
    by_day = {p["bucket_start"][:10]: p["review_count"] for p in daily["points"]}
    assert by_day["2026-11-16"] == 1 and by_day["2026-11-17"] == 1 and by_day["2026-11-18"] == 0
    utc = app_client.get(
        url, params={**period, "bucket": "day", "tz": "UTC"}, headers=world.headers["sup"]
    ).json()
    assert {p["bucket_start"][:10]: p["review_count"] for p in utc["points"]}["2026-11-15"] == 1

    default_period = app_client.get(url, headers=world.headers["root"]).json()
    assert (
        len(default_period["points"]) == 13 and sum(p["review_count"] for p in default_period["points"]) == 3
    )
    assert app_client.get(url, headers=world.headers["agent.b"]).status_code == 403
    assert app_client.get(url, params={"tz": "Mars/Base"}, headers=world.headers["qa.one"]).status_code == 422
    assert app_client.get(url, params={"bucket": "year"}, headers=world.headers["qa.one"]).status_code == 422
    assert app_client.get(f"{API}/agents/9999/trend", headers=world.headers["qa.one"]).status_code == 404


def test_sampling_is_risk_first_and_reproducible(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    with unit_of_work(session_factory) as session:
        for i in range(10):  # agent.b: ten unremarkable calls, no risk signal at all
            session.add(
                Call(
                    direction="outbound",
                    agent_user_id=world.users["agent.b"],
                    campaign_id=world.campaign_id,
                    started_at=DAY + timedelta(minutes=10 * i),
                    talk_s=100.0 + i,
                    outcome="answered",
                )
            )
    body = {"from": "2026-11-20T00:00:00Z", "to": "2026-11-23T00:00:00Z", "per_agent": 3, "seed": 42}
    qa = world.headers["qa.one"]
    run = app_client.post(f"{API}/sampling/run", json=body, headers=qa)
    assert run.status_code == 200, run.text
    picked = {p["call_id"]: p for p in run.json()["selected"]}
    c = world.calls
    assert picked[c["a_short"]]["reasons"] == ["dnc_disposition", "short_call"]
    assert picked[c["b_silent"]]["reasons"] == ["long_silence"]
    assert (
        picked[c["abandoned"]]["reasons"] == ["abandoned"] and picked[c["abandoned"]]["agent_user_id"] is None
    )
    assert c["no_answer"] not in picked  # nothing was said, nothing to review
    per_agent: dict[int | None, int] = {}
    for p in run.json()["selected"]:
        per_agent[p["agent_user_id"]] = per_agent.get(p["agent_user_id"], 0) + 1
    assert per_agent[world.users["agent.a"]] == 2  # only two calls in the period
    assert per_agent[world.users["agent.b"]] == 3  # the unused risk quota went to the random audit

    again = app_client.post(f"{API}/sampling/run", json=body, headers=world.headers["sup"]).json()
    assert again["call_ids"] == run.json()["call_ids"]
    others = {
        tuple(app_client.post(f"{API}/sampling/run", json={**body, "seed": s}, headers=qa).json()["call_ids"])
        for s in range(8)
    }
    assert len(others) > 1  # the seed matters

    _review(app_client, world, "b_silent")
    after = app_client.post(f"{API}/sampling/run", json=body, headers=qa).json()
    assert c["b_silent"] not in after["call_ids"]
    with_reviewed = app_client.post(
        f"{API}/sampling/run", json={**body, "include_reviewed": True}, headers=qa
    ).json()
    assert c["b_silent"] in with_reviewed["call_ids"]
    scoped = app_client.post(f"{API}/sampling/run", json={**body, "campaign_id": 9999}, headers=qa).json()
    assert scoped["considered"] == 0 and scoped["call_ids"] == []

    assert (
        app_client.post(f"{API}/sampling/run", json=body, headers=world.headers["agent.a"]).status_code == 403
    )
    backwards = {**body, "from": body["to"], "to": body["from"]}
    assert app_client.post(f"{API}/sampling/run", json=backwards, headers=qa).status_code == 422
    assert "qa.sampling.run" in _audit_actions(session_factory)


def test_every_write_is_audited(
    app_client: TestClient, world: World, session_factory: sessionmaker[Session]
) -> None:
    review = _review(app_client, world, "a_long", comments=[{"at_s": 1, "text": "hi"}])
    app_client.post(
        f"{API}/reviews/{review['id']}/comments",
        json={"at_s": 2, "text": "x"},
        headers=world.headers["qa.one"],
    )
    app_client.post(f"{API}/reviews/{review['id']}/acknowledge", headers=world.headers["agent.a"])
    app_client.post(
        f"{API}/scorecards",
        json={**default_scorecard_form(), "name": "audited"},
        headers=world.headers["qa.one"],
    )
    with session_factory() as session:
        rows = session.scalars(
            select(AuditLog).where(AuditLog.action.like("qa.%")).order_by(AuditLog.id)
        ).all()
    assert [r.action for r in rows] == [
        "qa.scorecard.seed",
        "qa.review.create",
        "qa.review.comment",
        "qa.review.acknowledge",
        "qa.scorecard.create",
    ]
    created = rows[1]
    assert created.actor_label == "user:qa.one" and created.entity_id == str(review["id"])
    assert created.details["total_pct"] == 100.0 and created.details["call_id"] == world.calls["a_long"]
    assert rows[3].actor_user_id == world.users["agent.a"]
