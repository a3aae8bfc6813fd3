"""Hopper against PostgreSQL: ordering, due times, and no lead reserved twice by concurrent callers."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import FixedClock
from core.db import unit_of_work
from dialer.hopper import open_attempt, open_attempts, reserve_leads
from dialer.models import Attempt, Campaign, Lead


def _campaign(session: Session) -> int:
    campaign = Campaign(name="c", caller_id_number="+861062345678")
    session.add(campaign)
    session.flush()
    return campaign.id


def test_order_and_due_time(session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    now = clock.now()
    with unit_of_work(session_factory) as session:
        cid = _campaign(session)
        session.add_all(
            [
                Lead(campaign_id=cid, phone_e164="+8613800000001", grade="C"),
                Lead(campaign_id=cid, phone_e164="+8613800000002", grade="A"),
                Lead(campaign_id=cid, phone_e164="+8613800000003", priority=5),
                Lead(campaign_id=cid, phone_e164="+8613800000004", status="callback", next_call_at=now),
                Lead(
                    campaign_id=cid,
                    phone_e164="+8613800000005",
                    status="retry",
                    next_call_at=now + timedelta(minutes=5),
                ),
                Lead(campaign_id=cid, phone_e164="+8613800000006", status="dnc"),
            ]
        )
    with unit_of_work(session_factory) as session:
        picked = [lead.phone_e164[-1] for lead in reserve_leads(session, campaign_id=cid, limit=10, now=now)]
    assert picked == ["4", "3", "2", "1"]
    with unit_of_work(session_factory) as session:
        assert reserve_leads(session, campaign_id=cid, limit=10, now=now) == []
        later = reserve_leads(session, campaign_id=cid, limit=10, now=now + timedelta(minutes=6))
        assert [lead.phone_e164[-1] for lead in later] == ["5"]


def test_concurrent_reservations_are_disjoint(
    session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    with unit_of_work(session_factory) as session:
        cid = _campaign(session)
        session.add_all(Lead(campaign_id=cid, phone_e164=f"+86138{i:08d}") for i in range(400))
    results: list[list[int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        mine: list[int] = []
        for _ in range(10):
            with unit_of_work(session_factory) as session:
                mine += [
                    lead.id for lead in reserve_leads(session, campaign_id=cid, limit=7, now=clock.now())
                ]
        with lock:
            results.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [lead_id for r in results for lead_id in r]
    assert len(flat) == len(set(flat)), "a lead was reserved twice"
    assert len(flat) == 400  # 8 × 10 × 7 = 560 asked, all 400 handed out exactly once


def test_attempt_ledger_row_before_originate(
    session_factory: sessionmaker[Session], clock: FixedClock
) -> None:
    with unit_of_work(session_factory) as session:
        cid = _campaign(session)
        session.add(Lead(campaign_id=cid, phone_e164="+8613800000009"))
    with unit_of_work(session_factory) as session:
        (lead,) = reserve_leads(session, campaign_id=cid, limit=1, now=clock.now())
        attempt = open_attempt(session, lead, dialer_node="node-a", now=clock.now(), action_id="a-1")
        attempt_id = attempt.id
    with session_factory() as session:
        stored = session.scalar(select(Attempt).where(Attempt.id == attempt_id))
        assert stored is not None and stored.state == "originating" and stored.action_id == "a-1"
        assert [a.id for a in open_attempts(session, dialer_node="node-a")] == [attempt_id]
        assert open_attempts(session, dialer_node="node-b") == []
        lead = session.get(Lead, stored.lead_id)
        assert lead is not None and lead.attempts == 1 and lead.status == "dialing"
