"""asyncio AMI client: one TCP connection to Asterisk, login, action/response correlation, events, reconnect.

Exceptions::

    AmiError
     ├── AmiAuthError        login rejected (`Response: Error`); never retried in a loop
     ├── AmiNotConnected     the action was NOT written (no live connection); safe to retry later
     ├── AmiConnectionLost   the connection dropped (EOF, `Event: Shutdown`, dead ping) while the action
     │                       was pending: it may or may not have run, and it is never re-sent
     └── AmiTimeout          no response in time; the action may still run
    AmiProtocolError         (dialer.ami.protocol) the byte stream is not AMI; the connection is dropped

Why our own protocol layer and not panoramisk: panoramisk re-sends pending actions after a reconnect
(an Originate sent twice dials a lead twice; DESIGN.md rule 6) and guesses the end of list actions from
message text, where Asterisk says it exactly with `EventList: Complete` (`core_show_channels`, `queue`).

ActionIDs are `<random token>-<connection generation>-<counter>`, so a late reply from an old
connection or from another client on the same account can never match a newer action.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from dialer.ami.message import AmiMessage, encode_action
from dialer.ami.protocol import AmiParser, AmiProtocolError

log = logging.getLogger(__name__)

EventCallback = Callable[[AmiMessage], Awaitable[None]]
ReconnectedCallback = Callable[[], Awaitable[None]]

_T = TypeVar("_T")
_READ_SIZE = 65536  # Asterisk writes in up to 64 KiB pieces (README finding 5)


class AmiError(Exception):
    """Base of every AMI client error."""


class AmiAuthError(AmiError):
    """Asterisk rejected the login (wrong user or secret, or MD5 key)."""


class AmiNotConnected(AmiError):
    """No live, logged-in connection: the action was not written."""


class AmiConnectionLost(AmiError):
    """The connection dropped while the action was pending; its outcome is unknown and it is not re-sent."""


class AmiTimeout(AmiError):
    """No response arrived in time."""


def md5_key(challenge: str, secret: str) -> str:
    """The `Key` for `AuthType: MD5` login: md5 hex of challenge followed by secret."""
    return hashlib.md5((challenge + secret).encode("utf-8"), usedforsecurity=False).hexdigest()


def backoff_delay(
    attempt: int, *, initial: float, maximum: float, multiplier: float, jitter: float, rand: float
) -> float:
    """Delay before reconnect `attempt` (0-based): capped exponential times 1 ± jitter, `rand` in [0, 1)."""
    # Jitter spreads the reconnects of several dialers after one Asterisk restart.
    base = min(maximum, initial * multiplier**attempt)
    return max(0.0, base * (1.0 + jitter * (2.0 * rand - 1.0)))


@dataclass(eq=False, slots=True)
class _Pending:
    action_id: str
    response: asyncio.Future[AmiMessage]
    is_list: bool
    events: list[AmiMessage] = field(default_factory=list)
    done: asyncio.Future[None] | None = None


@dataclass(eq=False, slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    generation: int
    banner: asyncio.Future[AmiMessage]
    pending: dict[str, _Pending] = field(default_factory=dict)
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    reader_task: asyncio.Task[None] | None = None
    logged_in: bool = False


class AmiClient:
    """One logged-in AMI connection that reconnects by itself and never re-sends an action."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 5038,
        username: str,
        secret: str,
        use_md5: bool = False,
        events_on: bool = True,
        on_event: EventCallback | None = None,
        on_reconnected: ReconnectedCallback | None = None,
        ping_interval: float = 20.0,
        ping_timeout: float = 5.0,
        action_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        reconnect_initial: float = 0.5,
        reconnect_max: float = 30.0,
        reconnect_multiplier: float = 2.0,
        reconnect_jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        self.use_md5 = use_md5
        self.events_on = events_on
        self.on_event = on_event
        self.on_reconnected = on_reconnected
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.action_timeout = action_timeout
        self.connect_timeout = connect_timeout
        self.reconnect_initial = reconnect_initial
        self.reconnect_max = reconnect_max
        self.reconnect_multiplier = reconnect_multiplier
        self.reconnect_jitter = reconnect_jitter
        self._rng = rng or random.Random()
        self._token = secrets.token_hex(4)
        self._counter = 0
        self._generation = 0
        self._conn: _Connection | None = None
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._fatal: BaseException | None = None
        self._stopped = asyncio.Event()
        # Unbounded on purpose: blocking the reader would also block action responses (the engine's
        # own Originate replies). The consumer must keep up; `bench/ami_ingest.py` measures that.
        self.events: asyncio.Queue[AmiMessage] = asyncio.Queue()
        """Events in arrival order, when no `on_event` callback is given (otherwise drained by it)."""
        self.banner: str | None = None

    # --- public API -------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while a connection is open and logged in."""
        return self._conn is not None and self._conn.logged_in and not self._conn.lost.is_set()

    @property
    def generation(self) -> int:
        """How many connections have been opened (1 after `connect`)."""
        return self._generation

    async def connect(self) -> None:
        """Open the first connection and log in; raises AmiAuthError, AmiTimeout or OSError."""
        if self.on_event is not None and self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch_events(), name="ami-events")
        try:
            await self._open()
        except BaseException:
            await self._stop_dispatcher()
            raise
        self._supervisor = asyncio.create_task(self._supervise(), name="ami-supervisor")
        if self.ping_interval > 0:
            self._pinger = asyncio.create_task(self._ping_loop(), name="ami-ping")

    async def send_action(
        self,
        name: str,
        fields: Sequence[tuple[str, str]] = (),
        *,
        timeout: float | None = None,
        action_id: str | None = None,
    ) -> AmiMessage:
        """Send one action and return its correlated Response (`Success`, `Error`, ...).

        `action_id` lets the caller register the id before the bytes leave (the dialer's ledger does,
        so an `OriginateResponse` that overtakes this coroutine's resumption is still correlated); it
        must be unique on this connection, which the dialer's attempt ids are.
        """
        conn = self._require_connection()
        if action_id is not None and action_id in conn.pending:
            raise ValueError(f"ActionID {action_id!r} already pending")
        pending = self._submit(conn, name, fields, is_list=False, action_id=action_id)
        try:
            return await self._await(pending.response, timeout)
        finally:
            conn.pending.pop(pending.action_id, None)

    async def send_list_action(
        self, name: str, fields: Sequence[tuple[str, str]] = (), *, timeout: float | None = None
    ) -> tuple[AmiMessage, list[AmiMessage]]:
        """Send a list action; return its Response and the events up to the one with `EventList: Complete`."""
        conn = self._require_connection()
        pending = self._submit(conn, name, fields, is_list=True)
        assert pending.done is not None
        try:
            response = await self._await(pending.response, timeout)
            await self._await(pending.done, timeout)
        finally:
            conn.pending.pop(pending.action_id, None)
        return response, pending.events

    async def close(self) -> None:
        """Log off (best effort), stop reconnecting and fail pending actions with AmiConnectionLost."""
        self._closing = True
        conn = self._conn
        if conn is not None and self.connected:
            with contextlib.suppress(AmiError, OSError):
                await self._await(self._submit(conn, "Logoff", (), is_list=False).response, 2.0)
        for task in (self._pinger, self._supervisor):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if conn is not None:
            await self._drop(conn, "client closed")
        if self._dispatcher is not None:
            await self.events.join()  # deliver what already arrived, then stop
        await self._stop_dispatcher()
        self._stopped.set()

    async def _stop_dispatcher(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None

    async def wait_closed(self) -> None:
        """Wait until the client stops; raise the error that stopped it (e.g. AmiAuthError on reconnect)."""
        await self._stopped.wait()
        if self._fatal is not None:
            raise self._fatal

    # --- sending ----------------------------------------------------------------------------------

    def _require_connection(self) -> _Connection:
        conn = self._conn
        if conn is None or not conn.logged_in or conn.lost.is_set() or self._closing:
            raise AmiNotConnected("no logged-in AMI connection")
        return conn

    def _next_action_id(self, conn: _Connection) -> str:
        self._counter += 1
        return f"{self._token}-{conn.generation}-{self._counter}"

    def _submit(
        self,
        conn: _Connection,
        name: str,
        fields: Sequence[tuple[str, str]],
        *,
        is_list: bool,
        action_id: str | None = None,
    ) -> _Pending:
        loop = asyncio.get_running_loop()
        action_id = action_id or self._next_action_id(conn)
        payload = encode_action(name, [("ActionID", action_id), *fields])  # ValueError before registering
        pending = _Pending(action_id=action_id, response=loop.create_future(), is_list=is_list)
        if is_list:
            pending.done = loop.create_future()
        conn.pending[action_id] = pending
        # Written now, in call order; StreamWriter buffers, and the reader task notices a dead socket.
        conn.writer.write(payload)
        return pending

    async def _await(self, future: asyncio.Future[_T], timeout: float | None) -> _T:
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout or self.action_timeout)
        except TimeoutError:
            raise AmiTimeout("no AMI response in time") from None

    # --- connection life cycle --------------------------------------------------------------------

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=_READ_SIZE), self.connect_timeout
            )
        except TimeoutError:
            raise AmiTimeout(f"connect to {self.host}:{self.port} timed out") from None
        self._generation += 1
        conn = _Connection(
            reader=reader, writer=writer, generation=self._generation, banner=loop.create_future()
        )
        self._conn = conn
        conn.reader_task = asyncio.create_task(self._read_loop(conn), name=f"ami-read-{conn.generation}")
        try:
            banner = await self._await(conn.banner, self.connect_timeout)
            self.banner = banner.name
            await self._login(conn)
        except BaseException:
            await self._drop(conn, "login failed")
            raise
        conn.logged_in = True
        log.info("ami connected", extra={"host": self.host, "generation": conn.generation})

    async def _login(self, conn: _Connection) -> None:
        fields: list[tuple[str, str]] = [("Username", self.username)]
        if self.use_md5:
            challenge = await self._await(
                self._submit(conn, "Challenge", [("AuthType", "MD5")], is_list=False).response, None
            )
            value = challenge.get("Challenge")
            if challenge.name != "Success" or not value:
                raise AmiAuthError(f"MD5 challenge refused: {challenge.get('Message')}")
            fields = [("AuthType", "MD5"), *fields, ("Key", md5_key(value, self._secret))]
        else:
            fields.append(("Secret", self._secret))
        fields.append(("Events", "on" if self.events_on else "off"))
        response = await self._await(self._submit(conn, "Login", fields, is_list=False).response, None)
        if response.name != "Success":
            raise AmiAuthError(response.get("Message") or f"login failed: {response.name}")

    async def _read_loop(self, conn: _Connection) -> None:
        parser = AmiParser()
        reason = "EOF"
        try:
            while True:
                data = await conn.reader.read(_READ_SIZE)
                if not data:
                    break
                shutdown = False
                for message in parser.feed(data):
                    shutdown = self._route(conn, message) or shutdown
                if shutdown:
                    # The rest of this read was still delivered in order; Asterisk closes the socket
                    # right after Shutdown anyway (14 ms later in `asterisk_restart`).
                    reason = "Event: Shutdown"
                    return
        except (OSError, AmiProtocolError) as exc:
            reason = repr(exc)
        finally:
            self._lose(conn, reason)

    def _route(self, conn: _Connection, message: AmiMessage) -> bool:
        """Deliver one message; return True when the connection must be treated as dead."""
        if message.kind == "banner":
            if not conn.banner.done():
                conn.banner.set_result(message)
            return False
        action_id = message.action_id
        pending = conn.pending.get(action_id) if action_id is not None else None
        if message.kind == "response":
            if pending is None:
                log.debug("ami response without pending action", extra={"action_id": action_id})
                return False
            if not pending.response.done():
                pending.response.set_result(message)
            if not pending.is_list or (message.get("EventList") or "").lower() != "start":
                # An Error, or an action that answered without a list: nothing more will follow.
                del conn.pending[action_id]  # type: ignore[arg-type]
                if pending.done is not None and not pending.done.done():
                    pending.done.set_result(None)
            return False
        if pending is not None and pending.is_list:
            if (message.get("EventList") or "").lower() == "complete":
                del conn.pending[action_id]  # type: ignore[arg-type]
                assert pending.done is not None
                if not pending.done.done():
                    pending.done.set_result(None)
            else:
                pending.events.append(message)
            return False
        self.events.put_nowait(message)
        return message.name == "Shutdown"

    def _lose(self, conn: _Connection, reason: str) -> None:
        if conn.lost.is_set():
            return
        conn.lost.set()
        if conn.logged_in and not self._closing:
            log.warning("ami connection lost", extra={"generation": conn.generation, "reason": reason})
        pending, conn.pending = conn.pending, {}
        for action_id, item in pending.items():
            error = AmiConnectionLost(f"connection lost ({reason}) while action {action_id} was pending")
            for future in (item.response, item.done):
                if future is not None and not future.done():
                    future.set_exception(error)
                    future.exception()  # retrieved here: a caller that gave up must not cause a warning
        if not conn.banner.done():
            conn.banner.set_exception(AmiConnectionLost(f"connection lost ({reason}) before the banner"))
            conn.banner.exception()
        conn.writer.close()

    async def _drop(self, conn: _Connection, reason: str) -> None:
        self._lose(conn, reason)
        if conn.reader_task is not None and conn.reader_task is not asyncio.current_task():
            conn.reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await conn.reader_task
        with contextlib.suppress(OSError, ConnectionError):
            await conn.writer.wait_closed()

    async def _supervise(self) -> None:
        while not self._closing:
            conn = self._conn
            assert conn is not None
            await conn.lost.wait()
            await self._drop(conn, "lost")
            if self._closing:
                return
            if not await self._reconnect():
                return
            if self.on_reconnected is not None:
                try:
                    await self.on_reconnected()
                except Exception:
                    log.exception("ami on_reconnected callback failed")

    async def _reconnect(self) -> bool:
        attempt = 0
        while not self._closing:
            delay = backoff_delay(
                attempt,
                initial=self.reconnect_initial,
                maximum=self.reconnect_max,
                multiplier=self.reconnect_multiplier,
                jitter=self.reconnect_jitter,
                rand=self._rng.random(),
            )
            await asyncio.sleep(delay)
            try:
                await self._open()
                return True
            except AmiAuthError as exc:
                # The account changed under us: retrying would only hammer Asterisk's auth log.
                log.error("ami login rejected on reconnect; giving up", extra={"error": str(exc)})
                self._fatal = exc
                self._closing = True
                self._stopped.set()
                return False
            except (OSError, AmiError) as exc:
                log.info("ami reconnect failed (attempt %d): %r", attempt, exc)
                attempt += 1
        return False

    async def _ping_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.ping_interval)
            conn = self._conn
            if conn is None or not self.connected:
                continue
            try:
                await self._await(self._submit(conn, "Ping", (), is_list=False).response, self.ping_timeout)
            except AmiTimeout:
                log.warning("ami ping timed out; dropping connection", extra={"generation": conn.generation})
                self._lose(conn, "ping timeout")
            except AmiError:
                continue

    async def _dispatch_events(self) -> None:
        assert self.on_event is not None
        while True:
            message = await self.events.get()
            try:
                await self.on_event(message)
            except Exception:
                log.exception("ami event callback failed", extra={"event": message.name})
            finally:
                self.events.task_done()
