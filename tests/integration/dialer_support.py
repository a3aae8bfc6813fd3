"""Shared set-up of the dialer integration tests: a dialable campaign with ready agents, an engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agents import service as agents
from core.clock import FixedClock
from core.db import unit_of_work
from core.models import Role
from dialer.ami.client import AmiClient
from dialer.engine import DialerEngine
from dialer.models import Campaign, Lead
from dialer.sandbox.callmodel import CallModel
from dialer.sandbox.pbx import SandboxPbx

ALWAYS_OPEN = {"every_day": [["00:00", "24:00"]], "breaks": []}


def seed_campaign(
    factory: sessionmaker[Session],
    make_user: Callable[..., int],
    clock: FixedClock,
    *,
    name: str,
    phones: Iterable[str],
    agents_ready: int,
    extension_base: int,
    **campaign: Any,
) -> int:
    """A progressive campaign open at any hour, its leads, and `agents_ready` agents logged in and ready."""
    with unit_of_work(factory) as session:
        row = Campaign(
            name=name,
            status="active",
            dial_mode=campaign.pop("dial_mode", "progressive"),
            caller_id_number="+861088886666",
            queue_name="sales",
            ring_timeout_s=campaign.pop("ring_timeout_s", 15),
            calling_windows=campaign.pop("calling_windows", ALWAYS_OPEN),
            **campaign,
        )
        session.add(row)
        session.flush()
        session.add_all(Lead(campaign_id=row.id, phone_e164=phone) for phone in phones)
        campaign_id = row.id
    for n in range(agents_ready):
        user_id = make_user(f"{name}-agent{n}", Role.AGENT)
        with unit_of_work(factory) as session:
            agents.login(
                session,
                user_id=user_id,
                campaign_id=campaign_id,
                extension=str(extension_base + n),
                now=clock.now(),
            )
            agents.set_state(session, user_id=user_id, state="ready", now=clock.now())
    return campaign_id


def sandbox_engine(
    factory: sessionmaker[Session], clock: FixedClock, pbx: SandboxPbx, **ami_options: Any
) -> DialerEngine:
    """A dialer engine on the sandbox PBX, ticking fast and reconnecting quickly."""
    options: dict[str, Any] = {"ping_interval": 0, "reconnect_initial": 0.05, "reconnect_max": 0.3}
    options.update(ami_options)
    ami = partial(
        AmiClient,
        host="127.0.0.1",
        port=pbx.port,
        username="dialer",
        secret="dialer-secret",
        use_md5=True,
        **options,
    )
    return DialerEngine(session_factory=factory, clock=clock, ami=ami, tick_s=0.05, wrap_s=1.0)


def ringing_model() -> CallModel:
    """Nobody answers: each lead is dialled once (no_answer retries are hours away)."""
    return CallModel(answer_rate=0, busy_rate=0, reject_rate=0, congestion_rate=0, unreachable_rate=0)
