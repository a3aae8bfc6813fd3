"""Live events as Server-Sent Events: the agent's state and screen pops, the supervisor's wallboard.

Each connection polls the database (every `poll_s`, 0.5 s by default) with a short session of its own,
in a worker thread so the event loop never waits on the database, and sends only what changed:

- agent feed: `state` (on connect and on every change), `screen_pop` (the session got a lead: lead card,
  contact warning, script start stage), `call_ended` (the agent left on_call); the feed ends after a
  `state` event saying `logged_out`.
- supervisor feed (one campaign): `wallboard` snapshots when the numbers change (checked every
  `wallboard_every_s`) and `state` per agent whose state changed (`logged_out` when one leaves).

A comment line (`: heartbeat`) goes out after `heartbeat_s` without events so proxies keep the stream
open. The feed stops when the client disconnects or after `max_events` events (tests, one-shot clients).
Polling keeps the API free of any broker; Redis pub/sub from the dialer engine can replace the poll
behind the same event names later.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents import reports, repository
from agents.models import AgentSession
from core.clock import Clock
from core.models import User

Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class FeedOptions:
    poll_s: float = 0.5
    heartbeat_s: float = 15.0
    max_events: int | None = None
    wallboard_every_s: float = 2.0


@dataclass(frozen=True, slots=True)
class AgentSnap:
    state: str
    pause_reason: str
    since: datetime
    wrap_until: datetime | None
    attempt_id: str | None
    lead_id: int | None
    campaign_id: int

    @classmethod
    def of(cls, row: AgentSession) -> AgentSnap:
        return cls(
            row.state,
            row.pause_reason,
            row.state_since,
            row.wrap_until,
            row.attempt_id,
            row.lead_id,
            row.campaign_id,
        )

    def public(self, user_id: int) -> dict[str, Any]:
        return {
            "user_id": user_id,
            "campaign_id": self.campaign_id,
            "state": self.state,
            "pause_reason": self.pause_reason,
            "since": self.since.isoformat(),
            "wrap_until": self.wrap_until.isoformat() if self.wrap_until else None,
            "attempt_id": self.attempt_id,
            "lead_id": self.lead_id,
        }


def format_event(name: str, data: dict[str, Any], event_id: int) -> str:
    """One SSE message; the JSON is on a single line, so no payload can end the message early."""
    return f"id: {event_id}\nevent: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


def agent_changes(prev: AgentSnap | None, snap: AgentSnap | None, user_id: int) -> list[tuple[str, bool]]:
    """Which events a change from `prev` to `snap` calls for (pure): (name, needs screen data)."""
    events: list[tuple[str, bool]] = []
    if (
        prev is not None
        and prev.state == "on_call"
        and (snap is None or snap.state != "on_call" or snap.attempt_id != prev.attempt_id)
    ):
        events.append(("call_ended", False))
    if snap is None:
        if prev is None or prev.state != "logged_out":
            events.append(("state", False))
        return events
    moved = prev is None or (prev.state, prev.pause_reason, prev.since, prev.wrap_until) != (
        snap.state,
        snap.pause_reason,
        snap.since,
        snap.wrap_until,
    )
    if moved:
        events.append(("state", False))
    new_lead = snap.lead_id is not None and (prev is None or snap.lead_id != prev.lead_id)
    new_call = (
        snap.attempt_id is not None
        and prev is not None
        and prev.attempt_id is not None
        and snap.attempt_id != prev.attempt_id
    )
    if snap.state != "logged_out" and (new_lead or new_call):
        events.append(("screen_pop", True))
    return events


def _agent_tick(
    factory: sessionmaker[Session], user_id: int, prev: AgentSnap | None, now: datetime, language: str
) -> tuple[AgentSnap | None, list[Event]]:
    with factory() as session:
        row = session.get(AgentSession, user_id)
        snap = AgentSnap.of(row) if row is not None else None
        events: list[Event] = []
        for name, needs_screen in agent_changes(prev, snap, user_id):
            if name == "call_ended" and prev is not None:
                events.append(
                    (name, {"attempt_id": prev.attempt_id, "lead_id": prev.lead_id, "at": now.isoformat()})
                )
            elif name == "state":
                events.append(
                    (name, snap.public(user_id) if snap else {"user_id": user_id, "state": "logged_out"})
                )
            elif needs_screen and row is not None and (user := session.get(User, user_id)) is not None:
                call = repository.current_call(session, row, user=user, now=now, default_language=language)
                if call is not None:
                    events.append((name, call.model_dump(mode="json")))
        return snap, events


async def _stream(
    tick: Callable[[Any], Awaitable[tuple[Any, list[Event], bool]]],
    options: FeedOptions,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The loop both feeds share: poll, send events, heartbeat, stop on disconnect or max_events."""
    sent = 0
    state: Any = None
    last_output = time.monotonic()
    yield "retry: 3000\n\n"
    while not await is_disconnected():
        state, events, finished = await tick(state)
        for name, data in events:
            sent += 1
            last_output = time.monotonic()
            yield format_event(name, data, sent)
            if options.max_events is not None and sent >= options.max_events:
                return
        if finished:
            return
        if time.monotonic() - last_output >= options.heartbeat_s:
            last_output = time.monotonic()
            yield ": heartbeat\n\n"
        await anyio.sleep(options.poll_s)


def agent_feed(
    *,
    factory: sessionmaker[Session],
    clock: Clock,
    user_id: int,
    default_language: str,
    options: FeedOptions,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The agent's own events (see the module docstring)."""

    async def tick(prev: AgentSnap | None) -> tuple[AgentSnap | None, list[Event], bool]:
        snap, events = await anyio.to_thread.run_sync(
            partial(_agent_tick, factory, user_id, prev, clock.now(), default_language)
        )
        return snap, events, snap is None or snap.state == "logged_out"

    return _stream(tick, options, is_disconnected)


@dataclass(frozen=True, slots=True)
class _BoardState:
    agents: dict[int, AgentSnap]
    board: dict[str, Any] | None
    board_at: float


def _supervisor_tick(
    factory: sessionmaker[Session],
    campaign_id: int,
    prev: _BoardState | None,
    now: datetime,
    tz_name: str,
    every_s: float,
) -> tuple[_BoardState, list[Event]]:
    with factory() as session:
        rows = session.scalars(
            select(AgentSession).where(
                AgentSession.campaign_id == campaign_id, AgentSession.state != "logged_out"
            )
        )
        agents = {row.user_id: AgentSnap.of(row) for row in rows}
        old = prev.agents if prev is not None else {}
        changed = [uid for uid in sorted(agents) if old.get(uid) != agents[uid]]
        gone = [uid for uid in sorted(old) if uid not in agents]
        events: list[Event] = []
        board, board_at = (prev.board, prev.board_at) if prev is not None else (None, 0.0)
        if prev is None or changed or gone or time.monotonic() - board_at >= every_s:
            fresh = reports.wallboard(session, campaign_id, now=now, tz_name=tz_name).model_dump(mode="json")
            board_at = time.monotonic()
            if board is None or {**fresh, "at": None} != {**board, "at": None}:
                events.append(("wallboard", fresh))
            board = fresh
        if changed or gone:
            names = repository.user_names(session, [*changed, *gone])
            for uid in changed:
                events.append(("state", {**agents[uid].public(uid), "name": names.get(uid, "")}))
            for uid in gone:
                events.append(("state", {"user_id": uid, "name": names.get(uid, ""), "state": "logged_out"}))
        return _BoardState(agents, board, board_at), events


def supervisor_feed(
    *,
    factory: sessionmaker[Session],
    clock: Clock,
    campaign_id: int,
    tz_name: str,
    options: FeedOptions,
    is_disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """Wallboard snapshots and agent state changes for one campaign."""

    async def tick(prev: _BoardState | None) -> tuple[_BoardState, list[Event], bool]:
        board, events = await anyio.to_thread.run_sync(
            partial(
                _supervisor_tick, factory, campaign_id, prev, clock.now(), tz_name, options.wallboard_every_s
            )
        )
        return board, events, False

    return _stream(tick, options, is_disconnected)
