"""One FastAGI session over an asyncio stream: send commands, await their replies, track hangup.

A single reader task owns the socket's read side. It feeds AgiStreamParser and hands each reply to
the one command awaiting it. That is what keeps `HANGUP` notices, which arrive between a command and
its reply (agi_caller_hangs_up) or after the script ended (every fixture), out of the reply stream.
Commands are serialised by a lock because Asterisk answers strictly in order. A command abandoned
by a timeout or cancellation still gets its reply later; it is counted as stale and discarded, so
the next command never takes a reply that was not meant for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from ivr.agi.protocol import (
    MAX_LINE_BYTES,
    AgiCommandError,
    AgiCommandTimeout,
    AgiConnectionClosed,
    AgiEnv,
    AgiError,
    AgiEvent,
    AgiProtocolError,
    AgiReply,
    AgiStreamParser,
    BadLine,
    ChannelHungUp,
    HangupNotice,
    format_command,
)

log = logging.getLogger(__name__)

_VARIABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.()\-]*")
_APP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ESCAPE_DIGITS = re.compile(r"[0-9*#]*")
_NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


class AgiChannel:
    """The commands a handler can send on one call; each returns the AgiReply or raises an AgiError."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        command_timeout_s: float = 30.0,
        max_line_bytes: int = MAX_LINE_BYTES,
        read_size: int = 64 * 1024,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._command_timeout_s = command_timeout_s
        self._read_size = read_size
        self._parser = AgiStreamParser(max_line_bytes=max_line_bytes)
        self._lock = asyncio.Lock()
        self._eof = asyncio.Event()
        self._env_waiter: asyncio.Future[AgiEnv] | None = None
        self._pending: asyncio.Future[AgiReply] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._stale_replies = 0
        self._broken: str | None = None
        self._hung_up = False
        self._closed = False
        self._env: AgiEnv | None = None
        self._variables_set: set[str] = set()

    # ------------------------------------------------------------ state

    @property
    def env(self) -> AgiEnv | None:
        return self._env

    @property
    def uniqueid(self) -> str:
        return self._env.uniqueid if self._env else "?"

    @property
    def hung_up(self) -> bool:
        """True once a `HANGUP` notice, a 511 reply or our own successful HANGUP was seen."""
        return self._hung_up

    @property
    def variables_set(self) -> frozenset[str]:
        """Names set with set_variable() and acknowledged by Asterisk."""
        return frozenset(self._variables_set)

    # ------------------------------------------------------------ reading

    async def read_env(self, timeout_s: float) -> AgiEnv:
        """Start the reader and wait for the env block."""
        if self._env is not None:
            return self._env
        self._env_waiter = asyncio.get_running_loop().create_future()
        self._reader_task = asyncio.create_task(self._read_loop(), name="agi-reader")
        async with asyncio.timeout(timeout_s):
            self._env = await self._env_waiter
        return self._env

    async def _read_loop(self) -> None:
        error: AgiError = AgiConnectionClosed("Asterisk closed the connection")
        try:
            while data := await self._reader.read(self._read_size):
                for event in self._parser.feed(data):
                    self._dispatch(event)
        except AgiProtocolError as exc:
            self._broken = str(exc)
            error = exc
            log.warning("agi %s: protocol error: %s", self.uniqueid, exc)
        except OSError as exc:  # reset by peer: the same as EOF for us
            error = AgiConnectionClosed(f"connection lost: {exc}")
        finally:
            self._eof.set()
            for waiter in (self._env_waiter, self._pending):
                if waiter is not None and not waiter.done():
                    waiter.set_exception(error)

    def _dispatch(self, event: AgiEvent) -> None:
        if isinstance(event, AgiEnv):
            if self._env_waiter is not None and not self._env_waiter.done():
                self._env_waiter.set_result(event)
        elif isinstance(event, HangupNotice):
            if not self._hung_up:
                log.debug("agi %s: HANGUP notice", self.uniqueid)
            self._hung_up = True
        elif isinstance(event, BadLine):
            self._fail_stream(f"not an AGI reply: {event.raw[:80]!r}")
        elif self._stale_replies:
            self._stale_replies -= 1  # the late reply of a command we gave up on
        elif self._pending is not None and not self._pending.done():
            self._pending.set_result(event)
        else:
            # Nothing asked for it: text injected through a value (or a broken peer). Trusting any later
            # reply could hand one command the answer meant for another, so stop using the stream.
            self._fail_stream(f"unsolicited reply {event.raw[:80]!r}")

    def _fail_stream(self, reason: str) -> None:
        log.warning("agi %s: %s; channel unusable", self.uniqueid, reason)
        self._broken = reason
        if self._pending is not None and not self._pending.done():
            self._pending.set_exception(AgiProtocolError(reason))

    # ------------------------------------------------------------ commands

    async def command(
        self, verb: str, *args: str | int, needs_live: bool = True, timeout_s: float | None = None
    ) -> AgiReply:
        """Send one command and return its reply (ChannelHungUp on 511 when `needs_live`)."""
        line = format_command(verb, *args)  # validated before anything is sent
        async with self._lock:
            if self._broken is not None:
                raise AgiProtocolError(self._broken)
            if self._eof.is_set() or self._closed:
                raise AgiConnectionClosed(f"{verb}: connection closed")
            if needs_live and self._hung_up:
                raise ChannelHungUp(f"{verb}: channel has hung up")
            waiter: asyncio.Future[AgiReply] = asyncio.get_running_loop().create_future()
            self._pending = waiter
            self._writer.write(line)
            try:
                async with asyncio.timeout(timeout_s or self._command_timeout_s):
                    await self._writer.drain()
                    reply = await waiter
            except TimeoutError:
                raise AgiCommandTimeout(f"{verb}: no reply in time") from None
            finally:
                # A timeout or cancellation cancels the awaited future itself; its reply is still coming.
                if waiter.cancelled() or not waiter.done():
                    self._stale_replies += 1
                    waiter.cancel()
                self._pending = None
        if reply.code == 511:  # "Command Not Permitted on a dead channel" (agi_caller_hangs_up)
            self._hung_up = True
            if needs_live:
                raise ChannelHungUp(f"{verb}: {reply.data}", reply)
        return reply

    def _timeout_with(self, timeout_ms: int) -> float:
        return self._command_timeout_s + max(timeout_ms, 0) / 1000

    async def answer(self) -> AgiReply:
        return await self.command("ANSWER")

    async def hangup(self) -> AgiReply:
        """Hang up the channel; allowed on a dead channel (agi_reject sends it before answering)."""
        reply = await self.command("HANGUP", needs_live=False)
        if reply.ok and reply.result == "1":
            self._hung_up = True
        return reply

    async def stream_file(self, name: str, escape_digits: str = "") -> AgiReply:
        """Play a file; `result` is the ASCII code of an escape digit, 0, or -1 on hangup/failure."""
        if not _ESCAPE_DIGITS.fullmatch(escape_digits):
            raise AgiCommandError(f"bad escape digits {escape_digits!r}")
        return await self.command("STREAM FILE", name, escape_digits)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> AgiReply:
        """Play a prompt and collect digits; `result` holds them, data `timeout` when none came in time."""
        return await self.command(
            "GET DATA", prompt, timeout_ms, max_digits, timeout_s=self._timeout_with(timeout_ms)
        )

    async def wait_for_digit(self, timeout_ms: int) -> AgiReply:
        """Wait for one DTMF digit; reply.digit gives it ("1" for result=49, agi_dtmf)."""
        return await self.command("WAIT FOR DIGIT", timeout_ms, timeout_s=self._timeout_with(timeout_ms))

    async def set_variable(self, name: str, value: str) -> AgiReply:
        """Set a channel variable; allowed after hangup so the dialplan still sees the result."""
        if not _VARIABLE_NAME.fullmatch(name):
            raise AgiCommandError(f"bad variable name {name!r}")
        reply = await self.command("SET VARIABLE", name, value, needs_live=False)
        if reply.ok:
            self._variables_set.add(name)
        return reply

    async def get_variable(self, name: str) -> AgiReply:
        """`result=1 (value)` when set, `result=0` when not (agi_variables)."""
        if not _VARIABLE_NAME.fullmatch(name):
            raise AgiCommandError(f"bad variable name {name!r}")
        return await self.command("GET VARIABLE", name, needs_live=False)

    async def get_full_variable(self, expression: str) -> AgiReply:
        """Evaluate a dialplan expression; its value may hold raw CR LF (agi_hostile_callerid_pct_crlf)."""
        return await self.command("GET FULL VARIABLE", expression, needs_live=False)

    async def verbose(self, message: str, level: int = 1) -> AgiReply:
        """Log to the Asterisk console; control characters (often from caller ID) are shown escaped."""
        text = _NOT_PRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", message)
        return await self.command("VERBOSE", text, level, needs_live=False)

    async def exec_(self, app: str, args: str = "", *, allow_dead: bool = False) -> AgiReply:
        """Run a dialplan application; `args` is one comma-separated string as in the dialplan."""
        if not _APP_NAME.fullmatch(app):
            raise AgiCommandError(f"bad application name {app!r}")
        words = (app, args) if args else (app,)
        return await self.command("EXEC", *words, needs_live=not allow_dead)

    # ------------------------------------------------------------ closing

    async def close(self, *, drain_timeout_s: float = 5.0) -> None:
        """Half-close, read until Asterisk's EOF (it still sends `HANGUP`), then close the socket."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, RuntimeError):
            if not self._writer.is_closing() and self._writer.can_write_eof():
                self._writer.write_eof()
        if self._reader_task is None:
            self._reader_task = asyncio.create_task(self._read_loop(), name="agi-reader")
        try:
            async with asyncio.timeout(drain_timeout_s):
                await self._eof.wait()
        except TimeoutError:
            log.warning("agi %s: no EOF within %.1fs after half-close", self.uniqueid, drain_timeout_s)
        finally:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
