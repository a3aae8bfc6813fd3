"""The dialer engine process: one AMI connection, the pacing loop, the dial ledger, agent queue sync.

Order of a dial (DESIGN §2): pacing says how many → the hopper reserves compliant leads → the ledger
row is committed → only then the Originate is written, with `ActionID = ChannelId prefix = attempt id`
so every event of the call can be tied to the ledger row. An Originate is never re-sent: after an AMI
reconnect or an engine restart, open ledger rows are re-registered and reconciled against
`CoreShowChannels` (found → keep tracking; gone → ended `lost_on_reconnect`, the lead retried).

Database work runs synchronously on the loop: each step is a short transaction, and doing it inline
keeps the tracker and the ledger in one order of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.db import unit_of_work
from dialer import ledger
from dialer.ami.client import AmiClient, AmiError, AmiNotConnected
from dialer.ami.events import CoreShowChannel, Shutdown, to_event
from dialer.ami.message import AmiMessage
from dialer.attempts.tracker import (
    AttemptAgentDone,
    AttemptAnswered,
    AttemptConnected,
    AttemptFinished,
    AttemptTracker,
    AttemptUpdate,
)
from dialer.compliance.rules import effective_ring_timeout
from dialer.hopper import new_attempt_id, open_attempts
from dialer.models import Attempt, Campaign
from dialer.pacing.controller import DialMode, PacingInput, calls_to_place
from dialer.pacing.estimator import estimate

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Live:
    """An attempt in flight, as the pacing loop counts it."""

    campaign_id: int
    placed_at: float
    answered: bool = False
    connected: bool = False


@dataclass(slots=True)
class EngineStats:
    originated: int = 0
    finished: int = 0
    refused: int = 0
    reconciled_lost: int = 0
    ledger_retries: int = 0
    ticks: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class CampaignLocks:
    """Campaign ownership: PostgreSQL advisory locks held on one dedicated connection for the engine's life.

    Session-level advisory locks belong to a database connection, so they must not live on an ORM
    session: after a commit its connection goes back to the pool, the lock stays on it, and a later
    unlock runs on another connection (found by the kill -9 test, where a second engine never got the
    campaign back).
    """

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._engine: Engine = session_factory.kw["bind"]
        self._conn: Connection | None = None
        self._held: set[int] = set()

    def acquire(self, campaign_id: int) -> bool:
        if campaign_id in self._held:
            return True
        if self._engine.dialect.name != "postgresql":
            self._held.add(campaign_id)  # embedded SQLite: a single engine process by construction
            return True
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # Namespace 7401 keeps our keys apart from other users of advisory locks in the database.
            got = bool(self._conn.scalar(text("SELECT pg_try_advisory_lock(7401, :id)"), {"id": campaign_id}))
        except Exception:
            # The lock connection died (database restart): every lock on it is gone with it. Start
            # over on a new connection next tick; until then this engine owns nothing.
            self._drop_connection()
            return False
        if got:
            self._held.add(campaign_id)
        return got

    def verify(self) -> None:
        """Once per tick: a dead lock connection means every lock on it is gone (database restart)."""
        if self._conn is None:
            return
        try:
            self._conn.execute(text("SELECT 1"))
        except Exception:
            log.warning("campaign lock connection lost; re-acquiring ownership")
            self._drop_connection()

    def release_all(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(text("SELECT pg_advisory_unlock_all()"))
        self._drop_connection()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # back to the pool; the unlock above already ran on it
        self._conn = None
        self._held.clear()


class DialerEngine:
    """Runs every active campaign assigned to this node against one PBX."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        clock: Clock,
        ami: Callable[..., AmiClient],
        node: str = "dialer-1",
        tick_s: float = 1.0,
        wrap_s: float = 30.0,
        sweep_after_s: float = 600.0,
    ) -> None:
        self._factory = session_factory
        self._clock = clock
        self.node = node
        self.tick_s = tick_s
        self.wrap_s = wrap_s
        self.sweep_after_s = sweep_after_s
        self.tracker = AttemptTracker()
        self.stats = EngineStats()
        self._live: dict[str, _Live] = {}
        self._members: dict[tuple[str, str], bool] = {}
        self._unsaved: deque[tuple[AttemptUpdate, datetime]] = (
            deque()
        )  # (queue, interface) -> paused, as sent to the PBX
        self._locks = CampaignLocks(session_factory)
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._reconciling = False
        self.ami = ami(on_event=self._on_message, on_reconnected=self._on_reconnected)

    # ---- lifecycle ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, recover open attempts, then pace until `stop()`."""
        await self.ami.connect()
        await self._recover()
        self._ready.set()
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                try:
                    await self.tick()
                except AmiError as exc:
                    log.warning("tick skipped: %s", exc)
                except Exception:
                    log.exception("tick failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._stopping.wait(), max(0.0, self.tick_s - (time.monotonic() - started))
                    )
        finally:
            await self.ami.close()
            self.release_campaigns()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def stop(self) -> None:
        self._stopping.set()

    def release_campaigns(self) -> None:
        """Give up campaign ownership (run() does this on exit; for callers that only tick())."""
        self._locks.release_all()

    # ---- recovery -----------------------------------------------------------------------------
    async def _recover(self) -> None:
        """Re-register this node's open ledger rows and reconcile them with the PBX's live channels."""
        with unit_of_work(self._factory) as session:
            rows = [
                (a.id, a.action_id, a.campaign_id, a.answered_at is not None)
                for a in open_attempts(session, dialer_node=self.node)
            ]
        for attempt_id, action_id, campaign_id, answered in rows:
            if not self.tracker.is_open(attempt_id):
                self.tracker.expect(
                    attempt_id,
                    action_id or attempt_id,
                    at=time.monotonic(),
                    channel_ids=(f"{attempt_id}-a", f"{attempt_id}-b"),
                )
                self._live[attempt_id] = _Live(campaign_id, time.monotonic(), answered=answered)
        await self._reconcile()

    async def _reconcile(self) -> None:
        if not self.tracker.open_attempts:
            return
        self._reconciling = True
        try:
            _, items = await self.ami.send_list_action("CoreShowChannels", timeout=10)
        finally:
            self._reconciling = False
        live = [ev.ref for ev in map(to_event, items) if isinstance(ev, CoreShowChannel)]
        updates = self.tracker.reconcile(live, at=time.monotonic())
        self.stats.reconciled_lost += len(updates)
        self._apply(updates)

    async def _on_reconnected(self) -> None:
        # Asterisk may have restarted: dynamic queue members are gone, so resend them on the next tick.
        self._members.clear()
        try:
            await self._reconcile()
        except AmiError as exc:
            log.warning("reconcile after reconnect failed: %s", exc)

    # ---- events -------------------------------------------------------------------------------
    async def _on_message(self, message: AmiMessage) -> None:
        event = to_event(message)
        if isinstance(event, Shutdown):
            log.warning("PBX shutting down (restart=%s); the AMI client will reconnect", event.restart)
            return
        updates = self.tracker.feed(event, time.monotonic())
        if updates:
            self._apply(updates)

    def _apply(self, updates: list[AttemptUpdate]) -> None:
        """Write updates in event order; if the database is unreachable, keep them and retry each tick.

        An update is never dropped: losing an AttemptFinished would leave its ledger row open until
        the next restart (found by the PostgreSQL-restart fault test). Later updates queue behind an
        unsaved one so each attempt's updates land in order.
        """
        now = self._clock.now()
        self._unsaved.extend((update, now) for update in updates)
        while self._unsaved:
            update, at = self._unsaved[0]
            try:
                with unit_of_work(self._factory) as session:
                    self._write_one(session, update, at)
            except Exception as exc:
                if len(self._unsaved) == 1 or self.stats.ledger_retries % 50 == 0:
                    log.warning("ledger write failed (%d queued, will retry): %r", len(self._unsaved), exc)
                self.stats.ledger_retries += 1
                return
            self._unsaved.popleft()
            self._after_write(update)

    def _write_one(self, session: Session, update: AttemptUpdate, now: datetime) -> None:
        if isinstance(update, AttemptAnswered):
            ledger.mark_answered(session, update.attempt_id, now=now)
        elif isinstance(update, AttemptConnected):
            ledger.mark_connected(session, update.attempt_id, interface=update.interface, now=now)
        elif isinstance(update, AttemptAgentDone):
            ledger.mark_agent_done(session, update.attempt_id, now=now, wrap_s=self.wrap_s)
        elif isinstance(update, AttemptFinished):
            ledger.record_finished(session, update, now=now)

    def _after_write(self, update: AttemptUpdate) -> None:
        """In-memory bookkeeping, only once the ledger has the update."""
        live = self._live.get(update.attempt_id)
        if isinstance(update, AttemptAnswered) and live:
            live.answered = True
        elif isinstance(update, AttemptConnected) and live:
            live.connected = True
        elif isinstance(update, AttemptFinished):
            self._live.pop(update.attempt_id, None)
            self.stats.finished += 1
            self.stats.outcomes[update.outcome.value] = self.stats.outcomes.get(update.outcome.value, 0) + 1
            log.info(
                "attempt %s ended: %s (cause %s)",
                update.attempt_id,
                update.outcome.value,
                update.hangup_cause,
            )

    # ---- pacing loop --------------------------------------------------------------------------
    async def tick(self) -> None:
        """One pacing round over every campaign this node owns."""
        self.stats.ticks += 1
        if not self.ami.connected or self._reconciling:
            return
        now = self._clock.now()
        self._apply(self.tracker.sweep(now=time.monotonic(), max_age_s=self.sweep_after_s))
        if self._unsaved:
            return  # the database is not taking writes: no new dials until the ledger is current
        self._locks.verify()
        with unit_of_work(self._factory) as session:
            campaigns = [
                c for c in ledger.active_campaigns(session, node=self.node) if self._locks.acquire(c.id)
            ]
            views = [ledger.campaign_view(session, c, now=now) for c in campaigns]
            # Claimed in the same transaction that read the campaigns (one per tick, not one more per
            # campaign); committed before any of their Originates leaves.
            previews = {c.id: ledger.claim_preview_dials(session, c, node=self.node) for c in campaigns}
        for view in views:
            await self._sync_members(view)
            await self._pace(view, now, previews[view.id])

    async def _sync_members(self, view: ledger.CampaignView) -> None:
        wanted = {a.interface: a.state != "ready" for a in view.agents if a.state != "logged_out"}
        for interface, paused in wanted.items():
            key = (view.queue, interface)
            if key not in self._members:
                reply = await self.ami.send_action(
                    "QueueAdd",
                    [
                        ("Queue", view.queue),
                        ("Interface", interface),
                        ("MemberName", interface),
                        ("Paused", "true" if paused else "false"),
                    ],
                )
                if reply.name == "Success" or "Already there" in (reply.get("Message") or ""):
                    self._members[key] = paused
                    if reply.name != "Success":
                        self._members[key] = not paused  # state unknown: force the pause below
            if self._members.get(key) is not None and self._members[key] != paused:
                await self.ami.send_action(
                    "QueuePause",
                    [
                        ("Queue", view.queue),
                        ("Interface", interface),
                        ("Paused", "true" if paused else "false"),
                    ],
                )
                self._members[key] = paused
        for queue, interface in [k for k in self._members if k[0] == view.queue and k[1] not in wanted]:
            await self.ami.send_action("QueueRemove", [("Queue", queue), ("Interface", interface)])
            del self._members[(queue, interface)]

    def _pacing_input(self, view: ledger.CampaignView, now: datetime) -> PacingInput:
        live = [x for x in self._live.values() if x.campaign_id == view.id]
        soon = tuple(
            max(0.0, (a.wrap_until - now).total_seconds())
            for a in view.agents
            if a.state == "wrap_up" and a.wrap_until
        )
        return PacingInput(
            mode=DialMode(view.dial_mode)
            if view.dial_mode in DialMode.__members__.values()
            else DialMode.PROGRESSIVE,
            agents_ready=sum(1 for a in view.agents if a.state == "ready"),
            agents_soon_free=soon,
            agents_on_call=sum(1 for a in view.agents if a.state == "on_call"),
            calls_in_flight=sum(1 for x in live if not x.answered),
            calls_waiting_for_agent=sum(1 for x in live if x.answered and not x.connected),
            dial_ratio=view.dial_ratio,
            max_lines=view.max_lines,
            abandon_target=view.abandon_target,
            estimates=estimate(now.timestamp(), view.recent),
            abandons_in_window=view.abandoned_in_window,
            answered_in_window=view.answered_in_window,
        )

    async def _pace(
        self, view: ledger.CampaignView, now: datetime, previews: list[ledger.PreviewDial]
    ) -> None:
        ring_s = effective_ring_timeout(view.regime, view.ring_timeout_s)
        for preview in previews:  # claimed and committed by tick(): the ledger row is current
            await self._originate(preview.dial, view, ring_s, agent_interface=preview.agent_interface)
        decision = calls_to_place(self._pacing_input(view, now))
        if decision.calls <= 0:
            return
        with unit_of_work(self._factory) as session:
            campaign = session.get(Campaign, view.id)
            if campaign is None:
                return
            dials = ledger.reserve_dials(
                session, campaign, count=decision.calls, now=now, node=self.node, new_id=new_attempt_id
            )
        # Committed: every dial below has its ledger row before its Originate leaves.
        for dial in dials:
            await self._originate(dial, view, ring_s)
        if dials:
            log.info("campaign %s: placed %d (%s)", view.id, len(dials), decision.reason)

    async def _originate(
        self, dial: ledger.Dial, view: ledger.CampaignView, ring_s: int, *, agent_interface: str = ""
    ) -> None:
        attempt_id = dial.attempt_id
        self.tracker.expect(
            attempt_id, attempt_id, at=time.monotonic(), channel_ids=(f"{attempt_id}-a", f"{attempt_id}-b")
        )
        self._live[attempt_id] = _Live(view.id, time.monotonic())
        fields = [
            ("Channel", f"Local/{dial.number}@outbound"),
            ("Context", "connect"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("CallerID", f'"{view.caller_id_name}" <{view.caller_id_number}>'),
            ("Timeout", str((ring_s + 5) * 1000)),  # the dialplan's Dial timeout ends the ring first
            ("Async", "true"),
            ("ChannelId", f"{attempt_id}-a"),
            ("OtherChannelId", f"{attempt_id}-b"),
            ("Variable", f"CC_ATTEMPT_ID={attempt_id}"),
            ("Variable", f"CC_CAMPAIGN_ID={view.id}"),
            ("Variable", f"CC_QUEUE={view.queue}"),
            ("Variable", f"DIALTIMEOUT={ring_s}"),
        ]
        if agent_interface:  # preview: the agent who asked gets the call, not the queue
            fields.append(("Variable", f"CC_AGENT={agent_interface}"))
        try:
            reply = await self.ami.send_action("Originate", fields, action_id=attempt_id, timeout=10)
        except AmiNotConnected as exc:
            # Refused before a byte was written (the connection was already down): certainly not
            # dialled, so end it now; the lead is retried like a network failure.
            self._apply(
                self.tracker.originate_refused(attempt_id, at=time.monotonic(), message=f"not sent: {exc}")
            )
            return
        except AmiError as exc:
            # Maybe sent, maybe not: never re-send. Reconciliation after reconnect decides its fate.
            log.warning("originate %s unconfirmed: %s", attempt_id, exc)
            return
        if reply.name != "Success":
            self.stats.refused += 1
            self._apply(
                self.tracker.originate_refused(
                    attempt_id, at=time.monotonic(), message=reply.get("Message") or ""
                )
            )
            return
        self.stats.originated += 1


def open_attempt_count(session: Session, *, node: str) -> int:
    """Ledger rows of `node` not yet ended (for health checks and tests)."""
    return len(
        list(session.scalars(select(Attempt.id).where(Attempt.dialer_node == node, Attempt.state != "ended")))
    )


def campaign_done(session: Session, campaign_id: int, *, now: datetime, horizon: timedelta) -> bool:
    """No lead of the campaign is due within `horizon` and nothing is in flight."""
    from dialer.models import Lead

    due = session.scalar(
        select(Lead.id)
        .where(
            Lead.campaign_id == campaign_id,
            Lead.status.in_(("new", "retry", "callback", "dialing")),
            (Lead.next_call_at.is_(None)) | (Lead.next_call_at <= now + horizon),
        )
        .limit(1)
    )
    return due is None
