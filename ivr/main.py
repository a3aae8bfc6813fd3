"""Wiring of the `agi` process: rules from the database, bulk detector, decision writer, FastAGI server."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core.clock import Clock, SystemClock
from core.db import unit_of_work
from ivr import service
from ivr.agi.server import AgiServer
from ivr.agi.variables import SCREEN_RESULT_ALLOW, SCREEN_RESULT_BLOCK
from ivr.handler import BulkObserve, ScreeningHandler, ScreeningRecord, ScreeningState
from ivr.models import NumberRule, ScreeningDecision, Trunk
from ivr.screening import BulkConfig, InMemoryBulkDetector, RedisBulkDetector, RuleSpec, ScreeningConfig
from ivr.screening import compile_rules as compile_number_rules

log = logging.getLogger(__name__)


def load_state(session: Session, *, now: datetime, region: str) -> ScreeningState:
    """Compile the live screening rules, trunks and settings into the handler's state."""
    rows = session.scalars(
        select(NumberRule).where(
            NumberRule.purpose == "screening",
            or_(NumberRule.expires_at.is_(None), NumberRule.expires_at > now),
        )
    )
    rules = compile_number_rules((RuleSpec.from_row(row) for row in rows), region=region)
    for rule_id, why in rules.rejected[:20]:
        log.warning("number rule %s not loaded: %s", rule_id, why)
    settings = service.load_settings(session)
    trunks = list(session.scalars(select(Trunk)))
    config = ScreeningConfig.from_settings(settings, trunks, region=region)
    # A million small rule objects would be rescanned by every GC pass during calls (bench/screening.py:
    # 117k decisions/s frozen vs ~40k unfrozen); they live until the next reload, so freeze them.
    gc.freeze()
    return ScreeningState(
        rules=rules,
        config=config,
        challenge_timeout_ms=int(settings.challenge_timeout_s * 1000),
        challenge_retries=settings.challenge_retries,
        pass_allow_s=settings.challenge_pass_allow_s,
    )


class DecisionWriter:
    """Stores screening decisions in batches off the call path (a slow database never delays a call)."""

    def __init__(self, session_factory: sessionmaker[Session], *, max_batch: int = 500) -> None:
        self._factory = session_factory
        self._queue: asyncio.Queue[ScreeningRecord | None] = asyncio.Queue(maxsize=100_000)
        self._max_batch = max_batch
        self.dropped = 0
        self.written = 0

    def record(self, item: ScreeningRecord) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1  # the decision was made and acted on; only its log row is lost

    async def run(self) -> None:
        """Write batches until `close()`; everything queued before it is written."""
        stopping = False
        while not stopping:
            first = await self._queue.get()
            batch = [] if first is None else [first]
            stopping = first is None
            while not self._queue.empty() and len(batch) < self._max_batch:
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if not batch:
                continue
            try:
                await asyncio.to_thread(self._write, batch)
                self.written += len(batch)
            except Exception:
                log.exception("could not store %d screening decisions", len(batch))

    async def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until everything recorded so far is written."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._queue.empty() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)  # let a batch taken off the queue reach its thread

    def close(self) -> None:
        self._queue.put_nowait(None)

    def _write(self, batch: Sequence[ScreeningRecord]) -> None:
        with unit_of_work(self._factory) as session:
            session.add_all(
                ScreeningDecision(
                    at=r.at,
                    uniqueid=r.uniqueid,
                    caller=r.caller,
                    called=r.called,
                    trunk=r.trunk,
                    action=r.action,
                    final_action=r.final_action,
                    reasons=r.reasons,
                    latency_us=r.latency_us,
                    details=r.details,
                )
                for r in batch
            )


@contextlib.asynccontextmanager
async def running_agi(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session],
    clock: Clock | None = None,
    host: str | None = None,
    port: int | None = None,
    reload_s: float = 30.0,
) -> AsyncIterator[tuple[AgiServer, ScreeningHandler, DecisionWriter]]:
    """The started AGI server with its background jobs; stops them on exit."""
    clock = clock or SystemClock()
    with unit_of_work(session_factory) as session:
        state = load_state(session, now=clock.now(), region=settings.default_region)
        screening_settings = service.load_settings(session)
    bulk_config = BulkConfig.from_settings(screening_settings)
    redis_client = None
    bulk_observe: BulkObserve
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis_client = aioredis.from_url(settings.redis_url, socket_timeout=settings.agi_deadline_s)
        bulk_observe = RedisBulkDetector(redis_client, bulk_config).observe
    else:
        bulk_observe = InMemoryBulkDetector(bulk_config).observe
    writer = DecisionWriter(session_factory)
    handler = ScreeningHandler(
        state=state,
        clock=clock,
        bulk_observe=bulk_observe,
        record=writer.record,
        deadline_s=settings.agi_deadline_s,
    )
    secret = settings.agi_secret.get_secret_value() if settings.agi_secret else None
    server = AgiServer(
        {"screen": handler},
        host=host or settings.agi_host,
        port=settings.agi_port if port is None else port,
        session_deadline_s=settings.agi_session_deadline_s,
        shared_secret=secret,
        fail_screen_result=SCREEN_RESULT_ALLOW
        if settings.agi_fail_policy == "allow"
        else SCREEN_RESULT_BLOCK,
    )

    async def reload() -> None:
        while True:
            await asyncio.sleep(reload_s)
            try:
                fresh = await asyncio.to_thread(_load_fresh, session_factory, clock, settings.default_region)
                fresh.recently_passed = handler.state.recently_passed
                handler.state = fresh
            except Exception:
                log.exception("screening rules reload failed; keeping the previous rules")

    await server.start()
    writing = asyncio.create_task(writer.run())
    reloading = asyncio.create_task(reload())
    try:
        yield server, handler, writer
    finally:
        await server.stop()
        reloading.cancel()
        writer.close()  # drain, never cancel a batch mid-write
        await asyncio.gather(writing, reloading, return_exceptions=True)
        if redis_client is not None:
            await redis_client.aclose()


def _load_fresh(factory: sessionmaker[Session], clock: Clock, region: str) -> ScreeningState:
    with unit_of_work(factory) as session:
        return load_state(session, now=clock.now(), region=region)


async def serve_agi(settings: Settings, *, session_factory: sessionmaker[Session]) -> None:
    """`callcenter agi`: screen inbound calls until SIGTERM."""
    from dialer.main import run_until_signalled

    async with running_agi(settings, session_factory=session_factory) as (server, _, _):
        log.info("FastAGI screening on %s:%s", settings.agi_host, server.port)
        stop = await run_until_signalled()
        await stop.wait()
