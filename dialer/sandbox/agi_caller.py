"""The inbound side of the sandbox PBX: place calls into a FastAGI server the way Asterisk 20 does.

For each call it connects over TCP, writes the env block (Asterisk's key order, `unknown` for an empty
caller ID / name / DNID / RDNIS, caller-controlled values written raw, CR LF included, as in
agi_hostile_callerid_pct_crlf), then answers every command like res_agi (../shared/fixtures/asterisk
agi_*.jsonl): `200 result=...` replies, `510` for unknown commands, `520` usage for bad arguments,
`511` for commands that need a live channel once it is dead, an asynchronous `HANGUP` notice when the
caller (or the script's HANGUP) ends the channel, and a final `HANGUP` after the script half-closes.

The simulated caller (CallerBehaviour) presses digits on each prompt: the digit a `.../press-<d>` prompt
asks for when `press_correct`, else its own `presses`; a robocaller (`presses=None`) never presses.
All call time (answer delay, prompts, digit timeouts, caller hangup) is multiplied by `time_scale`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

ASTERISK_VERSION = "20.20.1"
THREAD_ID = "140145212995264"  # agi_threadid as in the fixtures; only logged by Asterisk
SAMPLE_RATE = 8000  # endpos is in samples of the 8 kHz prompt
DEFAULT_DIGIT_TIMEOUT_MS = 5000  # GET DATA without (or with 0) timeout: the pbx's dtimeout
DIALPLAN_VARIABLES: Mapping[str, str] = MappingProxyType({"SCREEN_RESULT": "unknown"})  # [inbound] 1,Set
HANGUP_NOTICE = "HANGUP\n"
REPLY_DEAD = "511 Command Not Permitted on a dead channel or intercept routine\n"
REPLY_UNKNOWN = "510 Invalid or unknown command\n"
ENV_KEYS = (
    "agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language", "agi_type",
    "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname", "agi_callingpres",
    "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid", "agi_rdnis", "agi_context",
    "agi_extension", "agi_priority", "agi_enhanced", "agi_accountcode", "agi_threadid",
)  # fmt: skip  # Asterisk 20 setup_env order, as in every agi_*.jsonl; then agi_arg_1..n
_UNKNOWN_IF_EMPTY = frozenset({"agi_callerid", "agi_calleridname", "agi_dnid", "agi_rdnis"})
_PRESS_PROMPT = re.compile(r"(?:^|/)press-([0-9*#])$")
_EXPRESSION = re.compile(r"\$\{([^${}]*)\}")
_C_INT = re.compile(r"\s*([+-]?\d+)")
_serial = itertools.count(1)
_started = int(time.time())

HungUpBy = Literal["caller", "server", "none"]


@dataclass(frozen=True, slots=True)
class CallerBehaviour:
    """What the person (or robot) on the line does; times are call time, before `time_scale`."""

    presses: str | None = None  # digits sent when prompted ("5#" ends GET DATA early); None: never
    press_correct: bool = True  # press the digit a `press-<d>` prompt asks for instead of `presses`
    press_after_s: float = 0.3  # into each prompt / digit wait
    hangs_up_after_s: float | None = None  # from the start of the AGI session
    answer_delay_s: float = 0.5  # ANSWER until the 200 OK is acknowledged (agi_allow: 0.5 s)


@dataclass(frozen=True, slots=True)
class InboundCall:
    """One call arriving on a trunk; caller_id / caller_name are untrusted and written raw."""

    caller_id: str
    called: str  # DNID and the extension matched in the inbound context
    caller_name: str = ""
    trunk: str = "carrier1"
    uniqueid: str = ""  # "" = `sandbox-<boot>.<n>`
    channel: str = ""  # "" = `PJSIP/<trunk>-<8 hex>`
    behaviour: CallerBehaviour = field(default_factory=CallerBehaviour)
    identity_header: str | None = None  # SIP Identity, readable as channel variable SIP_IDENTITY
    rdnis: str = ""
    context: str = "inbound"
    priority: int = 2  # [inbound]: 1 Set(SCREEN_RESULT=unknown), 2 AGI(...)
    language: str = "en"
    accountcode: str = ""


@dataclass(frozen=True, slots=True)
class InboundResult:
    call: InboundCall  # with the uniqueid and channel actually used
    variables: dict[str, str]  # set by SET VARIABLE, last value wins
    commands: list[str]  # command lines received, without the LF
    replies: list[str]  # everything written after the env (replies and HANGUP notices), one per write
    answered: bool
    hung_up_by: HungUpBy
    duration_s: float  # wall clock
    error: str | None = None


_Handler = Callable[[list[str]], Awaitable[str]]


def _reply(text: str) -> _Handler:
    async def handler(argv: list[str]) -> str:
        return text

    return handler


def format_env(
    call: InboundCall, *, host: str, port: int, script: str, query: Mapping[str, str], args: Sequence[str]
) -> bytes:
    """The env block exactly as Asterisk 20 writes it (setup_env order), ended by the empty line."""
    # `screen?trunk=carrier1&secret=...`: written literally, as the dialplan's AGI() URL is
    netscript = script + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    values = (
        "yes", netscript, f"agi://{authority}/{netscript}", call.channel, call.language,
        call.channel.partition("/")[0], call.uniqueid, ASTERISK_VERSION, call.caller_id, call.caller_name,
        "0", "0", "0", "0", call.called, call.rdnis, call.context, call.called, str(call.priority), "0.0",
        call.accountcode, THREAD_ID,
    )  # fmt: skip
    entries = [*zip(ENV_KEYS, values, strict=True), *((f"agi_arg_{n}", a) for n, a in enumerate(args, 1))]
    text = "".join(f"{k}: {'unknown' if k in _UNKNOWN_IF_EMPTY and not v else v}\n" for k, v in entries)
    return (text + "\n").encode("utf-8")


def parse_args(line: str) -> list[str]:
    """res_agi's parse_args: split on space/tab, `"` toggles quoting, backslash escapes one character."""
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:  # an opening quote after whitespace starts a (maybe empty) word
                cur = []
                args.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                args[-1], cur = "".join(cur), None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
            args.append("")
        cur.append(ch)
        escaped = False
    if cur is not None:
        args[-1] = "".join(cur)
    return args


def _atoi(text: str) -> int:
    match = _C_INT.match(text)
    return int(match.group(1)) if match else 0


class _AsteriskChannel:
    """One AGI session seen from Asterisk's side: the channel's state and res_agi's command handlers."""

    def __init__(
        self, call: InboundCall, *, time_scale: float, prompt_s: float, variables: Mapping[str, str]
    ) -> None:
        self.call = call
        self.scale = time_scale
        self.prompt_s = prompt_s
        self.vars: dict[str, str] = dict(variables)
        if call.identity_header is not None:
            self.vars["SIP_IDENTITY"] = call.identity_header
        self.variables: dict[str, str] = {}
        self.commands: list[str] = []
        self.replies: list[str] = []
        self.answered = False
        self.hung_up_by: HungUpBy = "none"
        self._dead = asyncio.Event()
        self._notice_sent = False
        self._busy = False
        self._last_prompt = ""
        self._writer: asyncio.StreamWriter | None = None
        # verb words -> (handler, allowed on a dead channel, argc range incl. the verb words)
        self._handlers: dict[tuple[str, ...], tuple[_Handler, bool, int, int]] = {
            ("ANSWER",): (self._answer, False, 1, 1),
            ("HANGUP",): (self._hangup, True, 1, 2),
            ("STREAM", "FILE"): (self._stream_file, False, 4, 5),
            ("GET", "DATA"): (self._get_data, False, 3, 5),
            ("WAIT", "FOR", "DIGIT"): (self._wait_for_digit, False, 4, 4),
            ("SET", "VARIABLE"): (self._set_variable, True, 4, 4),
            ("GET", "VARIABLE"): (self._get_variable, True, 3, 3),
            ("GET", "FULL", "VARIABLE"): (self._get_full_variable, True, 4, 5),
            ("VERBOSE",): (_reply("200 result=1\n"), True, 2, 3),
            ("NOOP",): (_reply("200 result=0\n"), True, 1, 99),
            ("EXEC",): (_reply("200 result=0\n"), False, 2, 99),  # the application "ran"
        }

    async def run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, env: bytes) -> None:
        self._writer = writer
        writer.write(env)
        await writer.drain()
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):  # EOF: the script half-closed (a partial last line is dropped)
                break
            self._busy = True
            reply = await self.execute(line[:-1].decode("utf-8", "replace"))
            self._write(reply)
            if self._dead.is_set():
                self._send_notice()
            self._busy = False
            await writer.drain()
        self._write(HANGUP_NOTICE)  # every fixture: a last HANGUP before Asterisk closes
        await writer.drain()

    async def caller_hangs_up(self, after_s: float) -> None:
        await asyncio.sleep(after_s * self.scale)
        if self._dead.is_set():
            return
        self.hung_up_by = "caller"
        self._dead.set()
        if not self._busy:  # a command in progress replies first (result=-1), then the notice follows
            self._send_notice()

    def _write(self, text: str) -> None:
        self.replies.append(text)
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(text.encode("utf-8"))

    def _send_notice(self) -> None:
        if not self._notice_sent:
            self._notice_sent = True
            self._write(HANGUP_NOTICE)

    async def execute(self, line: str) -> str:
        """One command line (without LF) to its complete reply text."""
        self.commands.append(line)
        argv = parse_args(line)
        words = tuple(a.upper() for a in argv)
        for name, (handler, dead_ok, min_argc, max_argc) in self._handlers.items():
            if words[: len(name)] != name:
                continue
            if self._dead.is_set() and not dead_ok:
                return REPLY_DEAD
            if not min_argc <= len(argv) <= max_argc:
                return (
                    "520-Invalid command syntax.  Proper usage follows:\n"
                    f" Usage: {' '.join(name)}\n520 End of proper usage.\n"
                )
            return await handler(argv)
        return REPLY_UNKNOWN

    async def _wait(self, seconds: float | None) -> bool:
        """Let `seconds` of call time pass (None: forever); True when the channel died meanwhile."""
        if seconds is not None and seconds <= 0:
            return self._dead.is_set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None if seconds is None else seconds * self.scale):
                await self._dead.wait()
        return self._dead.is_set()

    def _digits_for(self, prompt: str) -> str | None:
        b, match = self.call.behaviour, _PRESS_PROMPT.search(prompt)
        return match.group(1) if b.presses is not None and b.press_correct and match else b.presses

    def lookup(self, name: str) -> str | None:
        """A channel variable, or one of the built-ins / functions the screening scripts read."""
        if name in self.vars:
            return self.vars[name]
        c = self.call
        builtins = {
            "CHANNEL": c.channel, "UNIQUEID": c.uniqueid, "EXTEN": c.called, "CONTEXT": c.context,
            "CALLERID(NUM)": c.caller_id, "CALLERID(NAME)": c.caller_name,
            "CALLERID(ALL)": f'"{c.caller_name}" <{c.caller_id}>',
            "PJSIP_HEADER(READ,IDENTITY)": c.identity_header,
        }  # fmt: skip
        return builtins.get(name.upper() if name.endswith(")") else name)

    async def _answer(self, argv: list[str]) -> str:
        if not self.answered:
            if await self._wait(self.call.behaviour.answer_delay_s):
                return "200 result=-1\n"
            self.answered = True
        return "200 result=0\n"

    async def _hangup(self, argv: list[str]) -> str:
        if len(argv) == 2 and argv[1] != self.call.channel:
            return "200 result=-1\n"
        if not self._dead.is_set():
            self.hung_up_by = "server"
            self._dead.set()
        return "200 result=1\n"

    async def _stream_file(self, argv: list[str]) -> str:
        self._last_prompt = argv[2]
        digits = self._digits_for(argv[2])
        if digits and digits[0] in argv[3] and self.call.behaviour.press_after_s < self.prompt_s:
            heard = self.call.behaviour.press_after_s
            reply = f"200 result={ord(digits[0])} endpos={int(heard * SAMPLE_RATE)}\n"
        else:
            heard, reply = self.prompt_s, f"200 result=0 endpos={int(self.prompt_s * SAMPLE_RATE)}\n"
        started = time.monotonic()
        if await self._wait(heard):
            played = (time.monotonic() - started) / self.scale if self.scale > 0 else 0.0
            return f"200 result=-1 endpos={int(min(played, heard) * SAMPLE_RATE)}\n"
        return reply

    async def _get_data(self, argv: list[str]) -> str:
        self._last_prompt = argv[2]
        timeout_ms = _atoi(argv[3]) if len(argv) > 3 else 0
        timeout_s = (timeout_ms if timeout_ms > 0 else DEFAULT_DIGIT_TIMEOUT_MS) / 1000
        max_digits = _atoi(argv[4]) if len(argv) > 4 else 0
        max_digits = max_digits if max_digits > 0 else 1024
        digits = self._digits_for(argv[2])
        press_at = self.call.behaviour.press_after_s
        if digits is None or press_at > self.prompt_s + timeout_s:
            if await self._wait(self.prompt_s + timeout_s):
                return "200 result=-1\n"
            return "200 result= (timeout)\n"
        typed, hash_sign, _ = digits.partition("#")
        if await self._wait(press_at):
            return "200 result=-1\n"
        if hash_sign or len(typed) >= max_digits:
            return f"200 result={typed[:max_digits]}\n"
        if await self._wait(timeout_s):  # waiting for more digits that never come
            return "200 result=-1\n"
        return f"200 result={typed} (timeout)\n"

    async def _wait_for_digit(self, argv: list[str]) -> str:
        timeout_ms = _atoi(argv[3])
        timeout_s = None if timeout_ms < 0 else timeout_ms / 1000
        digits = self._digits_for(self._last_prompt)
        press_at = self.call.behaviour.press_after_s
        if digits and (timeout_s is None or press_at <= timeout_s):
            if await self._wait(press_at):
                return "200 result=-1\n"
            return f"200 result={ord(digits[0])}\n"
        if await self._wait(timeout_s):
            return "200 result=-1\n"
        return "200 result=0\n"

    async def _set_variable(self, argv: list[str]) -> str:
        self.vars[argv[2]] = argv[3]
        self.variables[argv[2]] = argv[3]
        return "200 result=1\n"

    async def _get_variable(self, argv: list[str]) -> str:
        value = self.lookup(argv[2])
        return "200 result=0\n" if value is None else f"200 result=1 ({value})\n"

    async def _get_full_variable(self, argv: list[str]) -> str:
        if len(argv) == 5 and argv[4] != self.call.channel:
            return "200 result=0\n"  # no such channel
        value = _EXPRESSION.sub(lambda m: self.lookup(m.group(1)) or "", argv[3])
        return f"200 result=1 ({value})\n"


async def place_inbound_call(
    call: InboundCall,
    *,
    host: str,
    port: int,
    script: str = "screen",
    query: Mapping[str, str] | None = None,
    secret: str | None = None,
    args: Sequence[str] | None = None,
    timeout_s: float = 10.0,
    time_scale: float = 1.0,
    prompt_s: float = 1.0,
    dialplan_variables: Mapping[str, str] = DIALPLAN_VARIABLES,
) -> InboundResult:
    """Run one inbound call against the FastAGI server at host:port; never raises for I/O failures.

    `query` defaults to `{"trunk": call.trunk}`; `secret` is appended as `secret=` (the dialplan's
    `screen?trunk=${CC_TRUNK}&secret=${AGI_SECRET}`); `args` default to `(call.called,)`. `prompt_s`
    is the call-time length of every played file; `timeout_s` bounds the whole session (wall clock).
    `dialplan_variables` are the channel variables set before AGI() runs.
    """
    serial = next(_serial)
    call = dataclasses.replace(
        call,
        uniqueid=call.uniqueid or f"sandbox-{_started}.{serial}",
        channel=call.channel or f"PJSIP/{call.trunk}-{serial:08x}",
    )
    params = dict(query) if query is not None else {"trunk": call.trunk}
    if secret is not None:
        params["secret"] = secret
    env = format_env(
        call, host=host, port=port, script=script, query=params, args=(call.called,) if args is None else args
    )
    side = _AsteriskChannel(call, time_scale=time_scale, prompt_s=prompt_s, variables=dialplan_variables)
    started = time.monotonic()
    error: str | None = None
    writer: asyncio.StreamWriter | None = None
    hangup_task: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            if call.behaviour.hangs_up_after_s is not None:
                hangup_task = asyncio.create_task(side.caller_hangs_up(call.behaviour.hangs_up_after_s))
            await side.run(reader, writer, env)
    except TimeoutError:
        error = f"session not finished within {timeout_s}s"
    except (OSError, ValueError) as exc:  # ValueError: a command line beyond the reader's limit
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if hangup_task is not None:
            hangup_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hangup_task
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    duration_s = time.monotonic() - started
    return InboundResult(
        call, side.variables, side.commands, side.replies, side.answered, side.hung_up_by, duration_s, error
    )


async def run_mixed_stream(
    calls: Sequence[InboundCall], *, host: str, port: int, concurrency: int, **kw: Any
) -> list[InboundResult]:
    """Place every call with at most `concurrency` at once; results in the order of `calls`."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)

    async def one(call: InboundCall) -> InboundResult:
        async with gate:
            return await place_inbound_call(call, host=host, port=port, **kw)

    return list(await asyncio.gather(*(one(call) for call in calls)))
