"""`callcenter demo`: the whole product in one process on embedded defaults.

SQLite, in-process tasks, the sandbox PBX on the AMI port, the dialer engine, the FastAGI screening
server, the web app, and a recording-ingest loop, all in one asyncio loop. A demo campaign with
generated leads is seeded once; agents log in with the demo users and go ready to receive calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core import migrate as migrations
from core.audit import Actor
from core.clock import SystemClock
from core.db import make_engine, make_session_factory, unit_of_work
from core.models import Role, User
from core.users import create_user
from dialer.models import Campaign, Lead, LeadList

log = logging.getLogger(__name__)
DEMO_ACTOR = Actor(user_id=None, label="demo")
DEMO_PASSWORD = "demo-password"
DEMO_USERS = (
    ("admin", Role.ADMIN, "管理员"),
    ("supervisor", Role.SUPERVISOR, "主管"),
    ("qa", Role.QA, "质检"),
    ("agent1", Role.AGENT, "坐席一"),
    ("agent2", Role.AGENT, "坐席二"),
)
_COMPANIES = ("华东物流", "星河传媒", "嘉禾连锁", "远航科技", "青松制造", "金桥贸易", "蓝海广告", "百川医药")
_SEGMENTS = ("logistics", "media", "chain", "sme", "sme", "micro", "advertising", "group")


def seed(factory: sessionmaker[Session], *, leads: int = 300) -> None:
    """Demo users and one active progressive campaign with generated CN leads (idempotent)."""
    with unit_of_work(factory) as session:
        for index, (username, role, name) in enumerate(DEMO_USERS):
            if session.scalar(select(User).where(User.username == username)) is None:
                create_user(
                    session,
                    DEMO_ACTOR,
                    username=username,
                    password=DEMO_PASSWORD,
                    role=role,
                    display_name=name,
                    extension=str(1000 + index),
                )
        if session.scalar(select(Campaign.id).limit(1)) is not None:
            return
        campaign = Campaign(
            name="企业光纤专线·冬季拜访预约",
            status="active",
            dial_mode="progressive",
            caller_id_number="+861088886666",
            caller_id_name="光纤专线",
            company_name="示例通信",
            callback_number="010-8888-6666",
            queue_name="fiber-sales",
            # The demo should dial whatever the hour is where it runs; real campaigns keep the defaults.
            calling_windows={"every_day": [["00:00", "24:00"]], "breaks": []},
        )
        session.add(campaign)
        session.flush()
        lead_list = LeadList(campaign_id=campaign.id, name="demo list")
        session.add(lead_list)
        session.flush()
        rng = random.Random(2026)
        for n in range(leads):
            pick = rng.randrange(len(_COMPANIES))
            session.add(
                Lead(
                    campaign_id=campaign.id,
                    list_id=lead_list.id,
                    phone_e164=f"+86139{rng.randrange(10**8):08d}",
                    name=f"客户{n + 1}",
                    company=f"{_COMPANIES[pick]}{n + 1}号",
                    segment=_SEGMENTS[pick],
                    region="CN",
                    timezone="Asia/Shanghai",
                    grade=rng.choice("ABC"),
                    custom={
                        "current_services": rng.sample(["landline", "mobile", "adsl"], k=rng.randint(1, 2))
                    },
                )
            )


async def run(settings: Settings, *, port: int, log_level: str) -> None:
    """Everything in one loop until Ctrl-C."""
    import uvicorn

    from api.app import create_app
    from dialer.main import build_engine, build_sandbox, run_until_signalled
    from dialer.sandbox.callmodel import CallModel
    from ivr.main import running_agi

    migrations.upgrade(settings.database_url)
    factory = make_session_factory(make_engine(settings.database_url))
    seed(factory)
    clock = SystemClock()
    app = create_app(settings, session_factory=factory, clock=clock)
    pbx = build_sandbox(settings, model=CallModel(answer_rate=0.35, talk_mean_s=40, ring_mean_s=5))
    await pbx.start()
    engine = build_engine(settings, session_factory=factory, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.api_host, port=port, log_level=log_level))
    stop = await run_until_signalled()
    tasks: list[asyncio.Task[Any]] = []
    async with running_agi(settings, session_factory=factory, clock=clock) as (agi_server, _, _):
        tasks.append(asyncio.create_task(engine.run(), name="dialer"))
        tasks.append(asyncio.create_task(server.serve(), name="api"))
        tasks.append(asyncio.create_task(_ingest_loop(app.state.tasks), name="ingest"))
        log.info(
            "demo: web http://%s:%d (users %s / %s), sandbox AMI :%d, FastAGI :%d",
            settings.api_host,
            port,
            ", ".join(u for u, _, _ in DEMO_USERS),
            DEMO_PASSWORD,
            pbx.port,
            agi_server.port,
        )
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
        engine.stop()
        server.should_exit = True
        for task in tasks:
            if task.get_name() == "ingest":
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        waiter.cancel()
    await pbx.stop()


async def _ingest_loop(tasks: Any, every_s: float = 10.0) -> None:
    """The embedded default has no beat: process new recordings here (eager task, off the loop)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await asyncio.to_thread(tasks.recordings.enqueue_ingest)
        except Exception:
            log.exception("recording ingest failed")
