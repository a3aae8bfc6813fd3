"""Wiring of the dialer and sandbox processes (the only place that reads settings for them)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core.clock import Clock, SystemClock
from dialer.ami.client import AmiClient
from dialer.engine import DialerEngine
from dialer.sandbox.callmodel import CallModel
from dialer.sandbox.pbx import SandboxPbx

log = logging.getLogger(__name__)


def build_engine(
    settings: Settings, *, session_factory: sessionmaker[Session], clock: Clock | None = None
) -> DialerEngine:
    """The dialer engine for `settings`' PBX."""
    ami = partial(
        AmiClient,
        host=settings.ami_host,
        port=settings.ami_port,
        username=settings.ami_username,
        secret=settings.ami_secret.get_secret_value(),
        use_md5=True,  # the secret never crosses the wire (fixture login_md5_challenge)
    )
    return DialerEngine(
        session_factory=session_factory,
        clock=clock or SystemClock(),
        ami=ami,
        node=settings.dialer_node,
        tick_s=settings.dialer_tick_s,
        wrap_s=settings.dialer_wrap_s,
    )


def build_sandbox(settings: Settings, *, model: CallModel | None = None) -> SandboxPbx:
    """The sandbox PBX listening where `settings` says the AMI is."""
    return SandboxPbx(
        model=model or CallModel(),
        username=settings.ami_username,
        secret=settings.ami_secret.get_secret_value(),
        host=settings.ami_host,
        port=settings.ami_port,
        time_scale=settings.sandbox_time_scale,
        recordings_dir=settings.recordings_dir / "incoming",
    )


async def run_until_signalled() -> asyncio.Event:
    """An event set on SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-main thread
            loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_dialer(settings: Settings, *, session_factory: sessionmaker[Session]) -> None:
    """`callcenter dialer`: run the engine until SIGTERM."""
    engine = build_engine(settings, session_factory=session_factory)
    stop = await run_until_signalled()
    runner = asyncio.create_task(engine.run())
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    engine.stop()
    await runner


async def serve_sandbox(settings: Settings, *, model: CallModel | None = None) -> None:
    """`callcenter sandbox`: run the sandbox PBX until SIGTERM."""
    pbx = build_sandbox(settings, model=model)
    await pbx.start()
    stop = await run_until_signalled()
    await stop.wait()
    await pbx.stop()
