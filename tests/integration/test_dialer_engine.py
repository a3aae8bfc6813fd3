"""The dialer engine end to end: sandbox PBX over real TCP, PostgreSQL ledger, agents dispositioning.

Every lead's number has a known far-end behaviour; after the campaign every lead must be in the state
its outcome implies, every ledger row ended, and every Originate the PBX received tied to one row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from agents import service as agents
from agents.models import AgentSession
from core.audit import Actor
from core.clock import FixedClock
from core.db import unit_of_work
from core.models import Role
from dialer.engine import DialerEngine
from dialer.models import Attempt, Call, Campaign, Lead
from dialer.sandbox.callmodel import CallModel, FarEnd
from dialer.sandbox.pbx import SandboxPbx
from tests.integration.dialer_support import sandbox_engine

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 11:00 in Beijing, a Monday

FATES = {
    "13800138001": (FarEnd.ANSWER, "done"),
    "13800138002": (FarEnd.ANSWER, "done"),
    "13800138003": (FarEnd.ANSWER, "done"),
    "13800138004": (FarEnd.BUSY, "new"),
    "13800138005": (FarEnd.REJECT, "new"),
    "13800138006": (FarEnd.NO_ANSWER, "new"),
    "13800138007": (FarEnd.CONGESTION, "new"),
    "13800138008": (FarEnd.UNREACHABLE, "new"),
    "13800138009": (FarEnd.MACHINE, "new"),
    "13800138010": (FarEnd.BUSY, "new"),
}
OUTCOME = {
    FarEnd.ANSWER: "answered",
    FarEnd.BUSY: "busy",
    FarEnd.REJECT: "rejected",
    FarEnd.NO_ANSWER: "no_answer",
    FarEnd.CONGESTION: "congestion",
    FarEnd.UNREACHABLE: "unreachable",
    FarEnd.MACHINE: "machine",
}


@pytest.fixture
def campaign_id(session_factory: sessionmaker[Session], make_user) -> Iterator[int]:
    with unit_of_work(session_factory) as session:
        campaign = Campaign(
            name="fiber-e2e",
            status="active",
            dial_mode="progressive",
            caller_id_number="+861088886666",
            caller_id_name="Fiber",
            queue_name="sales",
            ring_timeout_s=20,
        )
        session.add(campaign)
        session.flush()
        for number in FATES:
            session.add(Lead(campaign_id=campaign.id, phone_e164=f"+86{number}", name=f"lead {number}"))
        cid = campaign.id
    for n in (1, 2):
        uid = make_user(f"agent{n}", Role.AGENT)
        with unit_of_work(session_factory) as session:
            agents.login(session, user_id=uid, campaign_id=cid, extension=f"100{n}", now=NOW)
            agents.set_state(session, user_id=uid, state="ready", now=NOW)
    yield cid


async def _agents_work(factory: sessionmaker[Session], clock: FixedClock, stop: asyncio.Event) -> int:
    """Simulated agents: disposition every call they finish as an appointment."""
    booked = 0
    while not stop.is_set():
        with unit_of_work(factory) as session:
            for row in session.scalars(select(AgentSession).where(AgentSession.state == "wrap_up")):
                agents.submit_disposition(
                    session,
                    user_id=row.user_id,
                    now=clock.now(),
                    actor=Actor(row.user_id, "agent"),
                    data=agents.DispositionInput(
                        code="appointment", grade="A", details={"at": "2026-11-25T10:00"}
                    ),
                )
                booked += 1
        await asyncio.sleep(0.02)
    return booked


async def _run_until_settled(
    engine: DialerEngine, factory: sessionmaker[Session], campaign_id: int, timeout: float
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        with unit_of_work(factory) as session:
            busy = session.scalar(
                select(func.count())
                .select_from(Lead)
                .where(Lead.campaign_id == campaign_id, Lead.status.in_(("dialing", "wrapup")))
            )
            fresh = session.scalar(
                select(func.count())
                .select_from(Lead)
                .where(Lead.campaign_id == campaign_id, Lead.attempts == 0, Lead.status == "new")
            )
        if busy == 0 and fresh == 0 and not engine.tracker.open_attempts:
            return
    with unit_of_work(factory) as session:
        leads = [(lead.phone_e164, lead.status, lead.attempts) for lead in session.scalars(select(Lead))]
        rows = [(a.id, a.state, a.outcome) for a in session.scalars(select(Attempt))]
    raise AssertionError(f"campaign did not settle: {leads} {rows} open={engine.tracker.open_attempts}")


def _engine(factory: sessionmaker[Session], clock: FixedClock, pbx: SandboxPbx) -> DialerEngine:
    return sandbox_engine(factory, clock, pbx)


async def test_campaign_runs_to_completion_and_every_lead_lands_in_its_state(
    session_factory: sessionmaker[Session], campaign_id: int
) -> None:
    clock = FixedClock(NOW)
    model = CallModel(overrides={n: fate for n, (fate, _) in FATES.items()}, talk_mean_s=5, talk_min_s=2)
    pbx = SandboxPbx(model=model, time_scale=0.01)
    await pbx.start()
    engine = _engine(session_factory, clock, pbx)
    stop = asyncio.Event()
    worker = asyncio.create_task(_agents_work(session_factory, clock, stop))
    runner = asyncio.create_task(engine.run())
    try:
        await _run_until_settled(engine, session_factory, campaign_id, timeout=30)
    finally:
        engine.stop()
        await runner
        stop.set()
        booked = await worker
        await pbx.stop()

    assert booked == 3
    with unit_of_work(session_factory) as session:
        leads = {lead.phone_e164[3:]: lead for lead in session.scalars(select(Lead))}
        for number, (_fate, status) in FATES.items():
            lead = leads[number]
            assert lead.status == status, (number, lead.status, lead.last_outcome)
            assert lead.attempts == 1
            if status == "new":
                assert lead.next_call_at is not None and lead.next_call_at > NOW
        attempts = list(session.scalars(select(Attempt)))
        assert len(attempts) == len(FATES) == pbx.originates
        assert all(a.state == "ended" for a in attempts)
        by_number = {a.phone_e164[3:]: a.outcome for a in attempts}
        assert by_number == {n: OUTCOME[f] for n, (f, _) in FATES.items()}
        calls = list(session.scalars(select(Call)))
        assert len(calls) == len(FATES)
        answered = [c for c in calls if c.outcome == "answered"]
        assert all(c.agent_user_id is not None and c.disposition_code == "appointment" for c in answered)
        assert (
            session.scalar(
                select(func.count()).select_from(AgentSession).where(AgentSession.state == "ready")
            )
            == 2
        )


async def test_no_free_agent_means_safe_harbour_abandon_counted(
    session_factory: sessionmaker[Session], campaign_id: int
) -> None:
    clock = FixedClock(NOW)
    with unit_of_work(session_factory) as session:
        for lead in session.scalars(select(Lead)):
            lead.status = "done" if lead.phone_e164 != "+8613800138001" else "new"
            lead.next_call_at = NOW + timedelta(minutes=1)  # not due until the members are taken away
    model = CallModel(overrides={"13800138001": FarEnd.ANSWER}, talk_mean_s=5)
    pbx = SandboxPbx(model=model, time_scale=0.01)
    await pbx.start()
    engine = _engine(session_factory, clock, pbx)
    runner = asyncio.create_task(engine.run())
    try:
        await engine.wait_ready()
        while len(pbx.queues.get("sales", {})) < 2:
            await asyncio.sleep(0.02)
        for member in pbx.queues["sales"].values():
            member.busy = True  # both agents taken behind the engine's back (e.g. a direct inbound call)
        with unit_of_work(session_factory) as session:
            session.execute(update(Lead).values(next_call_at=None))
        await _run_until_settled(engine, session_factory, campaign_id, timeout=20)
    finally:
        engine.stop()
        await runner
        await pbx.stop()
    with unit_of_work(session_factory) as session:
        attempt = session.scalars(select(Attempt)).one()
        assert attempt.outcome == "abandoned"
        lead = session.get(Lead, attempt.lead_id)
        assert lead is not None and lead.status == "new" and lead.next_call_at is not None
        assert lead.next_call_at >= NOW + timedelta(hours=12)


async def test_preview_dial_goes_to_the_agent_who_asked(
    session_factory: sessionmaker[Session], campaign_id: int
) -> None:
    clock = FixedClock(NOW)
    with unit_of_work(session_factory) as session:
        session.get(Campaign, campaign_id).dial_mode = "preview"  # type: ignore[union-attr]
        for lead in session.scalars(select(Lead)):
            lead.status = "done" if lead.phone_e164 != "+8613800138001" else "new"
        agent_id = session.scalars(select(AgentSession.user_id).order_by(AgentSession.user_id)).first()
    assert agent_id is not None
    with unit_of_work(session_factory) as session:
        lead = agents.reserve_preview_lead(session, user_id=agent_id, now=NOW)
        assert lead is not None and lead.phone_e164 == "+8613800138001"
        attempt_id = agents.request_preview_dial(session, user_id=agent_id, now=NOW).id
    model = CallModel(overrides={"13800138001": FarEnd.ANSWER}, talk_mean_s=3, talk_min_s=1)
    pbx = SandboxPbx(model=model, time_scale=0.01)
    await pbx.start()
    engine = _engine(session_factory, clock, pbx)
    runner = asyncio.create_task(engine.run())
    try:
        for _ in range(300):
            with unit_of_work(session_factory) as session:
                state = session.get(AgentSession, agent_id).state  # type: ignore[union-attr]
                attempt = session.get(Attempt, attempt_id)
                done = attempt is not None and attempt.state == "ended"
            if done and state == "wrap_up":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"preview call not handled: {state=} {done=}")
    finally:
        engine.stop()
        await runner
        await pbx.stop()
    with unit_of_work(session_factory) as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.outcome == "answered" and attempt.agent_user_id == agent_id
        assert pbx.originates == 1  # only the requested preview dial: progressive pacing is off


class _DownAmi:
    """An AMI client whose connection dropped just before the Originates: refused before writing."""

    connected = True  # as seen by the tick that decided to dial, a moment before the drop

    def __init__(self, **_: object) -> None:
        pass

    async def send_action(self, name: str, *_: object, **__: object) -> object:
        from dialer.ami.client import AmiNotConnected
        from dialer.ami.message import AmiMessage

        if name != "Originate":  # queue member sync went through just before the drop
            return AmiMessage("response", "Success", ())
        raise AmiNotConnected("not connected")


async def test_originate_refused_before_sending_ends_the_attempt_at_once(
    session_factory: sessionmaker[Session], campaign_id: int
) -> None:
    engine = DialerEngine(session_factory=session_factory, clock=FixedClock(NOW), ami=_DownAmi, tick_s=0.05)
    try:
        await engine.tick()
    finally:
        engine.release_campaigns()  # the advisory lock would otherwise outlive the test
    with unit_of_work(session_factory) as session:
        attempts = list(session.scalars(select(Attempt)))
        assert attempts and all(a.state == "ended" and a.outcome == "error" for a in attempts)
        leads = {a.lead_id for a in attempts}
        assert all(session.get(Lead, lid).status == "new" for lid in leads)  # type: ignore[union-attr]
    assert engine.tracker.open_attempts == []
