"""The sandbox PBX: an AMI server on TCP driven by a call model (dev, tests, demo and benchmarks).

It speaks the subset of AMI the dialer uses, with Asterisk 20's framing and replies as recorded in
../shared/fixtures/asterisk: banner line without blank line, MD5 challenge login, `FullyBooted` after
login, `Events: off`, Ping/Pong, async Originate ("Originate successfully queued" then events),
Hangup ("Channel Hungup"), CoreShowChannels as an event list, queue member actions, Logoff
("Thanks for all the fish.") and a restart that sends `Shutdown` and drops every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import secrets
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialer.sandbox import frames
from dialer.sandbox.callmodel import CallModel
from dialer.sandbox.calls import CallRunner, OriginateRequest, SandboxCall

log = logging.getLogger(__name__)
BANNER = b"Asterisk Call Manager/9.0.0\r\n"


@dataclass(slots=True)
class QueueMember:
    interface: str
    name: str
    paused: bool = False
    busy: bool = False
    idle_since: float = 0.0


@dataclass(slots=True, eq=False)
class _Session:
    writer: asyncio.StreamWriter
    authenticated: bool = False
    events: bool = True
    challenge: str = ""


class SandboxPbx:
    """An AMI endpoint whose calls follow `model`; `time_scale` < 1 runs call time faster."""

    def __init__(
        self,
        *,
        model: CallModel,
        username: str = "dialer",
        secret: str = "dialer-secret",
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        system_name: str = "sandbox",
        trunk: str = "carrier1",
        dial_timeout_s: float = 25.0,
        safe_harbour_s: float = 2.0,
        safe_harbour_message_s: float = 4.0,
        recordings_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.username = username
        self.secret = secret
        self.host = host
        self._port = port
        self.time_scale = time_scale
        self.system_name = system_name
        self.trunk = trunk
        self.dial_timeout_s = dial_timeout_s
        self.safe_harbour_s = safe_harbour_s
        self.safe_harbour_message_s = safe_harbour_message_s
        self.recordings_dir = recordings_dir
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._calls: set[SandboxCall] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._serial = itertools.count(1)
        self._booted = time.time()
        self._dials: dict[str, int] = {}
        self.queues: dict[str, dict[str, QueueMember]] = {}
        self._member_freed = asyncio.Condition()
        self.originates = 0  # Originate actions accepted, for tests and benchmarks
        self.received_attempts: set[str] = set()  # CC_ATTEMPT_ID of every accepted Originate

    # ---- lifecycle ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        self._booted = time.time()
        log.info("sandbox PBX AMI listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def restart(self, down_s: float = 0.2) -> None:
        """`core restart now`: Shutdown event, connections dropped, calls gone, back after `down_s`."""
        self.emit("Shutdown", [("Shutdown", "Cleanly"), ("Restart", "True")], privilege="system,all")
        await asyncio.sleep(0.014)  # fixture asterisk_restart: EOF about 14 ms after the event
        await self.stop()
        self._calls.clear()
        self.queues.clear()
        await asyncio.sleep(down_s)
        await self.start()

    # ---- state used by call runners -----------------------------------------------------------
    def next_uniqueid(self) -> str:
        return f"{self.system_name}-{int(self._booted)}.{next(self._serial)}"

    def next_local_serial(self) -> int:
        return next(self._serial)

    def live_channels(self) -> list[frames.SandboxChannel]:
        return [ch for call in self._calls for ch in call.channels if not ch.hung_up]

    async def wait_for_member(self, queue: str, limit_s: float) -> QueueMember | None:
        """The longest-idle free member of `queue` within `limit_s` (call time), marked busy."""
        deadline = time.monotonic() + limit_s * self.time_scale
        async with self._member_freed:
            while True:
                free = [m for m in self.queues.get(queue, {}).values() if not m.paused and not m.busy]
                if free:
                    member = min(free, key=lambda m: m.idle_since)
                    member.busy = True
                    return member
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._member_freed.wait(), remaining)

    def release_member(self, queue: str, interface: str) -> None:
        member = self.queues.get(queue, {}).get(interface)
        if member is not None:
            member.busy = False
            member.idle_since = time.monotonic()
        self._notify_members()

    def _notify_members(self) -> None:
        async def notify() -> None:
            async with self._member_freed:
                self._member_freed.notify_all()

        self._spawn(notify())

    def emit(self, name: str, *blocks: frames.Headers, privilege: str = "call,all") -> None:
        """Send an event to every logged-in session with events on."""
        data = frames.event(name, self.system_name, *blocks, privilege=privilege)
        for session in list(self._sessions):
            if session.authenticated and session.events and not session.writer.is_closing():
                session.writer.write(data)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- connections --------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(writer=writer)
        self._sessions.add(session)
        writer.write(BANNER)
        buffer = b""
        try:
            while not writer.is_closing():
                data = await reader.read(65536)
                if not data:
                    break
                buffer += data
                while b"\r\n\r\n" in buffer:
                    raw, buffer = buffer.split(b"\r\n\r\n", 1)
                    if raw.strip() and not await self._action(session, frames.parse_action(raw)):
                        return
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._sessions.discard(session)
            writer.close()

    async def _action(self, session: _Session, fields: dict[str, list[str]]) -> bool:
        """Handle one action; False closes the connection."""

        def first(key: str, default: str = "") -> str:
            return fields.get(key, [default])[0]

        name = first("action").lower()
        action_id = fields.get("actionid", [None])[0]
        write = session.writer.write
        if name == "challenge":
            session.challenge = str(secrets.randbelow(10**8)).zfill(8)
            write(frames.response(action_id, "Success", "", ("Challenge", session.challenge)))
            return True
        if name == "login":
            expected = self.secret
            if first("authtype").lower() == "md5":
                ok = first("key") == hashlib.md5((session.challenge + expected).encode()).hexdigest()
            else:
                ok = secrets.compare_digest(first("secret"), expected)
            if first("username") != self.username or not ok:
                await asyncio.sleep(0.05)
                write(frames.response(action_id, "Error", "Authentication failed"))
                return False
            session.authenticated = True
            session.events = first("events", "on").lower() not in ("off", "no", "false")
            write(frames.response(action_id, "Success", "Authentication accepted"))
            if session.events:
                uptime = str(int(time.time() - self._booted))
                write(
                    frames.encode([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime)])
                )
            return True
        if not session.authenticated:
            write(frames.response(action_id, "Error", "Missing authentication"))
            return True
        if name == "logoff":
            write(frames.response(action_id, "Goodbye", "Thanks for all the fish."))
            await session.writer.drain()
            return False
        if name == "ping":
            write(
                frames.response(
                    action_id, "Success", "", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")
                )
            )
        elif name == "events":
            session.events = first("eventmask", "on").lower() not in ("off", "no", "false")
            write(frames.response(action_id, "Success", "", ("Events", "On" if session.events else "Off")))
        elif name == "originate":
            write(self._originate(action_id or "", fields))
        elif name == "hangup":
            write(self._hangup_action(action_id, first("channel")))
        elif name == "coreshowchannels":
            self._core_show_channels(session, action_id)
        elif name in ("queueadd", "queueremove", "queuepause"):
            write(self._queue_action(name, action_id, fields))
        else:
            write(frames.response(action_id, "Error", "Invalid/unknown command"))
        return True

    def _originate(self, action_id: str, fields: dict[str, list[str]]) -> bytes:
        channel = fields.get("channel", [""])[0]
        if not channel:
            return frames.response(action_id, "Error", "Channel not specified")
        variables: dict[str, str] = {}
        for item in fields.get("variable", []):
            for pair in item.split(","):
                key, _, value = pair.partition("=")
                if key:
                    variables[key.strip()] = value
        caller = fields.get("callerid", [""])[0]
        caller_name, _, caller_num = caller.rpartition("<")
        number = channel.split("/", 1)[-1].split("@", 1)[0]
        request = OriginateRequest(
            action_id=action_id,
            channel=channel,
            number=number,
            context=fields.get("context", [""])[0],
            exten=fields.get("exten", [""])[0],
            application=fields.get("application", [""])[0],
            variables=variables,
            timeout_s=int(fields.get("timeout", ["30000"])[0] or 30000) / 1000.0,
            caller_num=caller_num.rstrip(">").strip() if caller_num else caller,
            caller_name=caller_name.strip().strip('"'),
            channel_id=fields.get("channelid", [""])[0],
            other_channel_id=fields.get("otherchannelid", [""])[0],
        )
        nth = self._dials.get(number, 0)
        self._dials[number] = nth + 1
        call = SandboxCall(request=request, plan=self.model.plan(number, nth))
        self._calls.add(call)
        self.originates += 1
        if "CC_ATTEMPT_ID" in variables:
            self.received_attempts.add(variables["CC_ATTEMPT_ID"])

        async def run() -> None:
            try:
                await CallRunner(self, call).run()
            finally:
                self._calls.discard(call)

        self._spawn(run())
        return frames.response(action_id, "Success", "Originate successfully queued")

    def _hangup_action(self, action_id: str | None, channel_name: str) -> bytes:
        for call in self._calls:
            if any(ch.name == channel_name and not ch.hung_up for ch in call.channels):
                call.hangup_requested.set()
                return frames.response(action_id, "Success", "Channel Hungup")
        return frames.response(action_id, "Error", "No such channel")

    def _core_show_channels(self, session: _Session, action_id: str | None) -> None:
        write = session.writer.write
        write(frames.response(action_id, "Success", "Channels will follow", ("EventList", "start")))
        channels = self.live_channels()
        for ch in channels:
            block: Sequence[tuple[str, str]] = [
                ("Event", "CoreShowChannel"),
                *([("ActionID", action_id)] if action_id else []),
                *ch.snapshot(),
                ("Application", ch.application or "Dial"),
                ("Duration", f"{int(time.monotonic() - ch.created):02d}"),
            ]
            write(frames.encode(block))
        tail: list[tuple[str, str]] = [("Event", "CoreShowChannelsComplete")]
        if action_id:
            tail.append(("ActionID", action_id))
        tail += [("EventList", "Complete"), ("ListItems", str(len(channels)))]
        write(frames.encode(tail))

    def _queue_action(self, name: str, action_id: str | None, fields: dict[str, list[str]]) -> bytes:
        queue = fields.get("queue", [""])[0]
        interface = fields.get("interface", [""])[0]
        members = self.queues.setdefault(queue, {}) if queue else {}
        if name == "queueadd":
            if interface in members:
                return frames.response(action_id, "Error", "Unable to add interface: Already there")
            paused = fields.get("paused", ["false"])[0].lower() in ("true", "1", "yes")
            members[interface] = QueueMember(
                interface, fields.get("membername", [interface])[0], paused, idle_since=time.monotonic()
            )
            self._notify_members()
            return frames.response(action_id, "Success", "Added interface to queue")
        if name == "queueremove":
            if members.pop(interface, None) is None:
                return frames.response(action_id, "Error", "Unable to remove interface: Not there")
            return frames.response(action_id, "Success", "Removed interface from queue")
        targets = [m for q, ms in self.queues.items() if not queue or q == queue for m in ms.values()]
        targets = [m for m in targets if m.interface == interface]
        if not targets:
            return frames.response(action_id, "Error", "Interface not found")
        for member in targets:
            member.paused = fields.get("paused", ["true"])[0].lower() in ("true", "1", "yes")
        self._notify_members()
        return frames.response(action_id, "Success", "Interface paused successfully")
