"""The telephony half of the product for browser tests: the sandbox PBX and a dialer engine.

Both run in one background thread with an event loop of their own (Playwright's sync API owns the test
thread's loop), against the same PostgreSQL session factory and clock as the live web server, so a page
sees the calls the engine places: the engine paces the campaign, originates on the sandbox, connects
answered calls to ready agents through queue members and moves their AgentSession on_call → wrap_up.
`time_scale` shrinks the sandbox's ring and talk times (0.1: a 60 s talk lasts 6 s).
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial

from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from dialer.ami.client import AmiClient
from dialer.engine import DialerEngine
from dialer.sandbox.callmodel import CallModel
from dialer.sandbox.pbx import SandboxPbx

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class LiveStack:
    """`start()` brings up the PBX and the engine (engine logged in to the AMI); `stop()` ends both."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        clock: Clock,
        *,
        model: CallModel,
        time_scale: float = 0.1,
        tick_s: float = 0.05,
        wrap_s: float = 30.0,
    ) -> None:
        self.factory = session_factory
        self.clock = clock
        self.model = model
        self.time_scale = time_scale
        self.tick_s = tick_s
        self.wrap_s = wrap_s
        self.pbx: SandboxPbx | None = None
        self.engine: DialerEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="e2e-live-stack", daemon=True)

    def start(self) -> LiveStack:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the sandbox PBX and dialer engine did not start")
        if self._error is not None:
            raise RuntimeError("the live stack failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError("the live stack did not stop")
        if self._error is not None:
            raise RuntimeError("the live stack failed") from self._error

    @property
    def originates(self) -> int:
        return self.pbx.originates if self.pbx is not None else 0

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread by start()/stop()
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        pbx = SandboxPbx(model=self.model, time_scale=self.time_scale)
        await pbx.start()
        self.pbx = pbx
        ami = partial(
            AmiClient,
            host="127.0.0.1",
            port=pbx.port,
            username="dialer",
            secret="dialer-secret",
            use_md5=True,
            ping_interval=0,
            reconnect_initial=0.05,
            reconnect_max=0.3,
        )
        engine = DialerEngine(
            session_factory=self.factory, clock=self.clock, ami=ami, tick_s=self.tick_s, wrap_s=self.wrap_s
        )
        self.engine = engine
        runner = asyncio.create_task(engine.run())
        try:
            await asyncio.wait_for(engine.wait_ready(), START_TIMEOUT_S)
            self._ready.set()
            await self._stop.wait()
        finally:
            engine.stop()
            await runner
            await pbx.stop()
