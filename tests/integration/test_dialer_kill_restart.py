"""`kill -9` of the dialer process mid-campaign, then a restart: no attempt lost, no lead dialled twice.

The dialer runs as the real `callcenter dialer` command in a subprocess against the sandbox PBX in this
process and the PostgreSQL test database. Every far end rings without answering (long enough that calls
are in flight at the kill), so each lead is dialled exactly once and each ends `no_answer` or, for the
calls that ended while no engine was listening, `lost_on_reconnect`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work
from dialer.models import Attempt, Lead
from dialer.sandbox.callmodel import FarEnd
from dialer.sandbox.pbx import SandboxPbx
from tests.conftest import TEST_DATABASE_URL, TEST_SECRET
from tests.integration.dialer_support import ringing_model, seed_campaign

LEADS = 40
ROOT = Path(__file__).resolve().parents[2]


def _env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CC_ENVIRONMENT="test",
        CC_DATABASE_URL=TEST_DATABASE_URL,
        CC_SECRET_KEY=TEST_SECRET,
        CC_AMI_PORT=str(port),
        CC_DIALER_TICK_S="0.05",
    )
    return env


async def _start_dialer(port: int, log: Path) -> asyncio.subprocess.Process:
    # Logs go to a file: a pipe nobody drains would stall the child once it fills.
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "core.cli",
            "dialer",
            "--log-level",
            "info",
            cwd=ROOT,
            env=_env(port),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=sink,
        )


def _counts(factory: sessionmaker[Session]) -> tuple[int, int]:
    with unit_of_work(factory) as session:
        total = session.scalar(select(func.count()).select_from(Attempt)) or 0
        open_ = session.scalar(select(func.count()).select_from(Attempt).where(Attempt.state != "ended")) or 0
    return total, open_


async def test_kill_9_mid_campaign_then_restart(
    session_factory: sessionmaker[Session], make_user, clock, tmp_path: Path
) -> None:
    log = tmp_path / "dialer.log"
    seed_campaign(
        session_factory,
        make_user,
        clock,
        name="kill-test",
        phones=[f"+861380013{n:04d}" for n in range(LEADS)],
        agents_ready=4,
        extension_base=2000,
    )

    model = ringing_model()
    assert model.plan("13800130000").far_end is FarEnd.NO_ANSWER
    pbx = SandboxPbx(model=model, time_scale=0.02)  # 20 s of ringing = 0.4 s
    await pbx.start()
    proc = await _start_dialer(pbx.port, log)
    try:
        for _ in range(300):  # wait until a third of the leads have been dialled
            total, open_ = _counts(session_factory)
            if total >= LEADS // 3 and open_ > 0:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"dialer made no progress: {log.read_text()[-3000:]}")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        killed_total, killed_open = _counts(session_factory)
        assert killed_open > 0, "the kill should leave calls in flight"
        await asyncio.sleep(0.3)  # some of those calls end while no engine listens
        proc = await _start_dialer(pbx.port, log)
        for _ in range(600):
            with unit_of_work(session_factory) as session:
                fresh = session.scalar(select(func.count()).select_from(Lead).where(Lead.attempts == 0)) or 0
                dialing = (
                    session.scalar(select(func.count()).select_from(Lead).where(Lead.status == "dialing"))
                    or 0
                )
            total, open_ = _counts(session_factory)
            if fresh == 0 and dialing == 0 and open_ == 0:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"not settled: {fresh=} {dialing=} {open_=}: {log.read_text()[-3000:]}")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 10)
        await pbx.stop()

    with unit_of_work(session_factory) as session:
        attempts = list(session.scalars(select(Attempt)))
        per_lead = dict(
            session.execute(select(Attempt.lead_id, func.count()).group_by(Attempt.lead_id)).all()
        )
        outcomes = {a.outcome for a in attempts}
    assert len(attempts) == LEADS == pbx.originates  # every Originate the PBX got has exactly one ledger row
    assert set(per_lead.values()) == {1}  # no lead dialled twice
    assert all(a.state == "ended" for a in attempts)  # no attempt left dangling
    assert outcomes <= {"no_answer", "lost_on_reconnect"}
    assert killed_total < LEADS
