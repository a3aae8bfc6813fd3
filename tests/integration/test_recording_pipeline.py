"""A sandbox campaign call ends up as a playable, measured recording that QA can hear.

Sandbox PBX (writes the MixMonitor WAV) → dialer engine (links the recording to the call in the
ledger) → ingest (transcode, metrics, storage) → the API streams it with Range to QA, not to
another agent.
"""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents import service as agents
from agents.models import AgentSession
from api.app import create_app
from config.settings import Settings
from core.clock import FixedClock
from core.db import unit_of_work
from core.models import Role
from dialer.ami.client import AmiClient
from dialer.engine import DialerEngine
from dialer.models import Call, Campaign, Lead
from dialer.sandbox.callmodel import CallModel, FarEnd
from dialer.sandbox.pbx import SandboxPbx
from recordings.ingest import IngestPolicy, ingest_pending
from recordings.models import Recording
from recordings.storage import LocalStorage
from tests.conftest import PASSWORD


async def test_answered_sandbox_call_becomes_a_playable_recording(
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FixedClock,
    make_user,
    tmp_path: Path,
) -> None:
    agent_id = make_user("rec-agent", Role.AGENT)
    make_user("rec-qa", Role.QA)
    make_user("other-agent", Role.AGENT)
    with unit_of_work(session_factory) as session:
        campaign = Campaign(
            name="rec",
            status="active",
            caller_id_number="+861088886666",
            queue_name="sales",
            calling_windows={"every_day": [["00:00", "24:00"]], "breaks": []},
        )
        session.add(campaign)
        session.flush()
        session.add(Lead(campaign_id=campaign.id, phone_e164="+8613800138001"))
        agents.login(session, user_id=agent_id, campaign_id=campaign.id, extension="1001", now=clock.now())
        agents.set_state(session, user_id=agent_id, state="ready", now=clock.now())
    spool = tmp_path / "incoming"
    model = CallModel(overrides={"13800138001": FarEnd.ANSWER}, talk_mean_s=4, talk_min_s=4)
    pbx = SandboxPbx(model=model, time_scale=0.01, recordings_dir=spool)
    await pbx.start()
    ami = partial(
        AmiClient, host="127.0.0.1", port=pbx.port, username="dialer", secret="dialer-secret", ping_interval=0
    )
    engine = DialerEngine(session_factory=session_factory, clock=clock, ami=ami, tick_s=0.05)
    runner = asyncio.create_task(engine.run())
    try:
        for _ in range(200):
            with unit_of_work(session_factory) as session:
                state = session.get(AgentSession, agent_id).state  # type: ignore[union-attr]
                recording = session.scalar(select(Recording))
            if state == "wrap_up" and recording is not None and list(spool.glob("*.wav")):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no recorded call")
    finally:
        engine.stop()
        await runner
        await pbx.stop()

    storage = LocalStorage(tmp_path / "store")
    with unit_of_work(session_factory) as session:
        report = ingest_pending(
            session, storage=storage, spool_dir=spool, now=clock.now(), policy=IngestPolicy()
        )
    assert report.processed and not report.failed, report
    with unit_of_work(session_factory) as session:
        recording = session.scalars(select(Recording)).one()
        call = session.get(Call, recording.call_id)
        assert call is not None and call.agent_user_id == agent_id and call.outcome == "answered"
        assert recording.status == "processed" and recording.duration_s >= 3.5
        assert recording.metrics.get("peaks")
        rid = recording.id

    app = create_app(settings, session_factory=session_factory, clock=clock, recording_storage=storage)
    with TestClient(app) as client:
        qa = login_as(client, "rec-qa")
        audio = client.get(f"/api/v1/recordings/{rid}/audio", headers={**qa, "Range": "bytes=0-99"})
        assert audio.status_code == 206 and len(audio.content) == 100
        own = client.get(f"/api/v1/recordings/{rid}", headers=login_as(client, "rec-agent"))
        assert own.status_code == 200
        other = client.get(f"/api/v1/recordings/{rid}/audio", headers=login_as(client, "other-agent"))
        assert other.status_code == 403


def login_as(client: TestClient, username: str) -> dict[str, str]:
    resp = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}
