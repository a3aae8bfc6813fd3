"""FastAGI wire format, pure (bytes in, values out; no sockets, no clock).

What Asterisk 20 really sends is in ../shared/fixtures/asterisk/agi_*.jsonl (README "FastAGI"):
an env block of `agi_key: value` lines ended by an empty line, then one reply line per command,
plus `HANGUP` notices that arrive whenever the channel goes away (and again at session end).
Caller-controlled values are not escaped by Asterisk: a raw CR LF in the caller ID reaches us
inside the env and inside GET FULL VARIABLE replies (agi_hostile_callerid_pct_crlf).

Exceptions:
    AgiError
    ├── AgiProtocolError      the peer sent something that is not AGI (or too much of it)
    ├── AgiCommandError       a command cannot be sent safely (CR/LF/NUL, too long); also ValueError
    ├── AgiCommandTimeout     no reply within the per-command timeout
    ├── AgiConnectionClosed   EOF while a reply was awaited
    └── ChannelHungUp         the channel is gone (HANGUP notice or 511) and the command needs it
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import parse_qsl, urlsplit

MAX_LINE_BYTES = 64 * 1024
MAX_ENV_LINES = 256
# res_agi reads a command into a 2048-byte buffer (AGI_BUF_LEN) and runs whatever follows byte 2047
# as a *second* command, so a long value is an injection vector: refuse to send one.
MAX_COMMAND_BYTES = 2000
_MAX_JOINED_PARTS = 32
_MAX_USAGE_LINES = 200


class AgiError(Exception):
    """Base of every FastAGI error."""


class AgiProtocolError(AgiError):
    """The peer sent bytes that are not valid AGI."""


class AgiCommandError(AgiError, ValueError):
    """A command or argument that cannot be sent without changing its meaning."""


class AgiCommandTimeout(AgiError):
    """No reply arrived within the per-command timeout."""


class AgiConnectionClosed(AgiError):
    """Asterisk closed the socket while a reply was awaited."""


class ChannelHungUp(AgiError):
    """The channel has hung up; `reply` is the 511 reply when there was one."""

    def __init__(self, message: str, reply: AgiReply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


# ---------------------------------------------------------------- framing


_OPEN_DATA = re.compile(rb"\d{3} result=\S* \(")
_CLOSED_DATA = re.compile(rb"\)(?: endpos=-?\d+)?\Z")


class LineFramer:
    """Split a byte stream into logical lines (without the final LF), buffering partial reads.

    A physical line ending in CR continues on the next one: Asterisk writes a caller ID holding a raw
    CR LF unescaped (agi_hostile_callerid_pct_crlf: `agi_callerid: 5550100\\r` + `agi_extension`), and
    a reply line with it (`200 result=1 (5550100\\r\\nagi_extension)`) must stay one reply or the reader
    desyncs. In `reply_mode` a `result=x (` reply also continues until its closing parenthesis, which
    keeps a bare-LF value in one reply too. An empty physical line is never a continuation, so a value
    ending in CR cannot swallow the env terminator.
    """

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.reply_mode = False
        self._max = max_line_bytes
        self._buf = bytearray()
        self._parts: list[bytes] = []
        self._size = 0
        self._ready: deque[bytes] = deque()

    def feed(self, data: bytes) -> None:
        """Add received bytes; take lines with next_line()."""
        self._buf += data
        if len(self._buf) + self._size > self._max and b"\n" not in self._buf:
            raise AgiProtocolError(f"line longer than {self._max} bytes")

    def next_line(self) -> bytes | None:
        """The next complete logical line, or None when more bytes are needed."""
        while not self._ready:
            idx = self._buf.find(b"\n")
            if idx < 0:
                return None
            physical = bytes(self._buf[:idx])
            del self._buf[: idx + 1]
            self._push(physical)
        return self._ready.popleft()

    def _push(self, physical: bytes) -> None:
        if not physical and self._parts:
            self._emit()
            self._ready.append(b"")
            return
        self._parts.append(physical)
        self._size += len(physical) + 1
        if self._size > self._max:
            raise AgiProtocolError(f"line longer than {self._max} bytes")
        if len(self._parts) < _MAX_JOINED_PARTS and (
            physical.endswith(b"\r") or (self.reply_mode and self._reply_open())
        ):
            return
        self._emit()

    def _reply_open(self) -> bool:
        line = b"\n".join(self._parts)
        return bool(_OPEN_DATA.match(line)) and not _CLOSED_DATA.search(line)

    def _emit(self) -> None:
        self._ready.append(b"\n".join(self._parts))
        self._parts = []
        self._size = 0


# ---------------------------------------------------------------- env

# The order in which Asterisk 20 writes the env (launch_netscript + setup_env; every fixture agrees).
# Authentic lines always come in this order, so a key line out of it is text injected through a value.
ENV_KEY_ORDER: tuple[str, ...] = (
    "agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language", "agi_type",
    "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname", "agi_callingpres",
    "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid", "agi_rdnis", "agi_context",
    "agi_extension", "agi_priority", "agi_enhanced", "agi_accountcode", "agi_threadid",
)  # fmt: skip
_KEY_POS = {key: pos for pos, key in enumerate(ENV_KEY_ORDER)}
_KEY = re.compile(r"agi_[a-z0-9_]+")
_ARG_KEY = re.compile(r"agi_arg_([1-9][0-9]{0,3})")
# Asterisk writes an empty value as `unknown` (README, agi_hostile_callerid_empty_user).
_UNKNOWN_MEANS_EMPTY = frozenset({"agi_callerid", "agi_calleridname", "agi_dnid", "agi_rdnis"})


@dataclass(frozen=True, slots=True)
class AgiEnv:
    """The AGI environment of one call, typed; `raw` keeps the authentic values as sent."""

    request: str
    network_script: str
    script: str  # the route: network_script without `?query` and leading slash
    query: Mapping[str, str]  # first value per name; Asterisk does not parse it (agi_variables)
    args: tuple[str, ...]
    channel: str
    language: str
    type: str
    uniqueid: str
    version: str
    callerid: str  # "" when Asterisk wrote `unknown`
    calleridname: str
    callingpres: int
    dnid: str
    rdnis: str
    context: str
    extension: str
    priority: int
    accountcode: str
    threadid: str
    network: bool
    raw: Mapping[str, str]
    suspicious: bool = False
    suspicious_reasons: tuple[str, ...] = field(default=())


def _to_int(value: str, reasons: list[str], key: str) -> int:
    try:
        return int(value)
    except ValueError:
        if value:
            reasons.append(f"{key} is not an integer")
        return 0


_CALLER_POS = _KEY_POS["agi_callerid"]


def _authentic_indexes(entries: list[tuple[str | None, str]], positions: list[int | None]) -> set[int]:
    """Indexes of the authentic key lines.

    Caller-controlled text (caller ID and name) can only add lines right after its own value, so:
    a key Asterisk writes *before* the caller ID is authentic in its first copy, a key written after it
    in its last copy (the injected copies precede the real one); `agi_arg_N` lines are authentic only
    after the authentic `agi_threadid`, the last fixed key. This is the AMI header rule of
    dialer/ami/events.py, and unlike "longest run in order" an injected complete tail cannot outvote it
    (tests/hardening/test_parser_fuzz.py).
    """
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, (key, _) in enumerate(entries):
        if key is not None and positions[i] is not None and not key.startswith("agi_arg_"):
            first.setdefault(key, i)
            last[key] = i
    chosen = {idx for key, idx in first.items() if _KEY_POS.get(key, _CALLER_POS) < _CALLER_POS}
    chosen |= {idx for key, idx in last.items() if _KEY_POS.get(key, _CALLER_POS) >= _CALLER_POS}
    tail_start = last.get("agi_threadid", -1)
    seen_args: set[str] = set()
    for i, (key, _) in enumerate(entries):
        if i > tail_start and key is not None and key.startswith("agi_arg_") and key not in seen_args:
            seen_args.add(key)
            chosen.add(i)
    return chosen


def env_from_lines(lines: Iterable[str]) -> AgiEnv:
    """Build the env from logical lines (CR-continuations already joined, terminator excluded)."""
    reasons: list[str] = []
    entries: list[tuple[str | None, str]] = []
    for line in lines:
        key, sep, value = line.partition(": ")
        if "\r" in line or "\n" in line:
            reasons.append(f"raw CR/LF in the value of {key if sep else 'a line'}")
        if sep and _KEY.fullmatch(key):
            entries.append((key, value))
        else:  # never a key: the tail of the previous value, split by a bare LF
            reasons.append(f"line without an agi_ key: {line[:40]!r}")
            entries.append((None, line))
    positions: list[int | None] = []
    for entry_key, _ in entries:
        arg = _ARG_KEY.fullmatch(entry_key or "")
        positions.append(len(ENV_KEY_ORDER) + int(arg.group(1)) if arg else _KEY_POS.get(entry_key or ""))
    authentic = _authentic_indexes(entries, positions)
    raw: dict[str, str] = {}
    last_key: str | None = None
    for i, (entry_key, value) in enumerate(entries):
        keep = entry_key is not None and (
            i in authentic if positions[i] is not None else entry_key not in raw
        )
        if keep and entry_key is not None:
            raw[entry_key], last_key = value, entry_key
            continue
        if entry_key is not None:
            reasons.append(f"{entry_key} out of order or repeated: not taken")
        if last_key is not None:  # keep the text with the value it most likely came from
            raw[last_key] += "\n" + (f"{entry_key}: {value}" if entry_key is not None else value)
    return _typed_env(raw, reasons)


def _typed_env(raw: dict[str, str], reasons: list[str]) -> AgiEnv:
    def get(key: str) -> str:
        value = raw.get(key, "")
        return "" if key in _UNKNOWN_MEANS_EMPTY and value == "unknown" else value

    for required in ("agi_request", "agi_uniqueid", "agi_threadid"):
        if required not in raw:
            reasons.append(f"{required} missing: env incomplete")
    network_script = get("agi_network_script")
    ref = network_script or urlsplit(get("agi_request")).path
    path, _, query_string = ref.partition("?")
    if not network_script:
        query_string = urlsplit(get("agi_request")).query
    query: dict[str, str] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        query.setdefault(name, value)
    arg_numbers = sorted(int(m.group(1)) for k in raw if (m := _ARG_KEY.fullmatch(k)))
    return AgiEnv(
        request=get("agi_request"),
        network_script=network_script,
        script=path.lstrip("/"),
        query=MappingProxyType(query),
        args=tuple(raw[f"agi_arg_{n}"] for n in arg_numbers),
        channel=get("agi_channel"),
        language=get("agi_language"),
        type=get("agi_type"),
        uniqueid=get("agi_uniqueid"),
        version=get("agi_version"),
        callerid=get("agi_callerid"),
        calleridname=get("agi_calleridname"),
        callingpres=_to_int(get("agi_callingpres"), reasons, "agi_callingpres"),
        dnid=get("agi_dnid"),
        rdnis=get("agi_rdnis"),
        context=get("agi_context"),
        extension=get("agi_extension"),
        priority=_to_int(get("agi_priority"), reasons, "agi_priority"),
        accountcode=get("agi_accountcode"),
        threadid=get("agi_threadid"),
        network=get("agi_network") == "yes",
        raw=MappingProxyType(raw),
        suspicious=bool(reasons),
        suspicious_reasons=tuple(dict.fromkeys(reasons)),
    )


def parse_env(block: bytes | str) -> AgiEnv:
    """Parse an env block (up to and excluding the empty terminator line; anything after it is ignored)."""
    data = block.encode("utf-8") if isinstance(block, str) else block
    framer = LineFramer(max_line_bytes=max(MAX_LINE_BYTES, len(data) + 1))
    framer.feed(data if data.endswith(b"\n") else data + b"\n")
    lines: list[str] = []
    while (line := framer.next_line()) is not None and (line or not _has_threadid(lines)):
        lines.append(line.decode("utf-8", "replace"))
    return env_from_lines(lines)


def _has_threadid(lines: list[str]) -> bool:
    return any(line.startswith("agi_threadid: ") for line in lines)


# ---------------------------------------------------------------- replies


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One command reply. For replies without `result=` (510, 511, 520) `data` holds the message."""

    code: int
    result: str
    data: str  # the parenthesised part: `(timeout)`, a variable's value
    endpos: int | None
    raw: str

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        try:
            return int(self.result)
        except ValueError:
            return None

    @property
    def digit(self) -> str | None:
        """The DTMF digit of a WAIT FOR DIGIT / STREAM FILE result (ASCII code: 49 -> "1")."""
        value = self.result_int
        return chr(value) if self.ok and value is not None and 0 < value < 128 else None

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"


@dataclass(frozen=True, slots=True)
class HangupNotice:
    """The asynchronous `HANGUP` line (agi_caller_hangs_up; also sent at session end)."""


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is neither a reply nor a notice: the stream can no longer be trusted."""

    raw: str


AgiEvent = AgiEnv | AgiReply | HangupNotice | BadLine
HANGUP_NOTICE = HangupNotice()
_REPLY = re.compile(r"(\d{3})(?: (.*))?", re.S)
_RESULT = re.compile(r"result=(\S*)(?: \((.*)\))?(?: endpos=(-?\d+))?", re.S)


def parse_reply(line: bytes | str) -> AgiReply:
    """Parse one logical reply line (no trailing LF): `200 result=1 (value) endpos=12`."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.removesuffix("\n")
    match = _REPLY.fullmatch(text)
    if match is None:
        raise AgiProtocolError(f"not an AGI reply: {text[:80]!r}")
    rest = match.group(2) or ""
    result = _RESULT.fullmatch(rest)
    if result is None:
        token = rest.split(" ", 1)[0]
        if token.startswith("result="):
            return AgiReply(int(match.group(1)), token.removeprefix("result="), "", None, text)
        return AgiReply(int(match.group(1)), "", rest, None, text)
    endpos = int(result.group(3)) if result.group(3) is not None else None
    return AgiReply(int(match.group(1)), result.group(1), result.group(2) or "", endpos, text)


class AgiStreamParser:
    """Everything Asterisk sends on one connection, as events: first the AgiEnv, then replies/notices."""

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES, max_env_lines: int = MAX_ENV_LINES) -> None:
        self._framer = LineFramer(max_line_bytes=max_line_bytes)
        self._max_env_lines = max_env_lines
        self._env_lines: list[str] | None = []
        self._usage: list[str] | None = None

    @property
    def env_complete(self) -> bool:
        return self._env_lines is None

    def feed(self, data: bytes) -> list[AgiEvent]:
        """Add received bytes (any chunking) and return the events they complete, in order."""
        self._framer.feed(data)
        events: list[AgiEvent] = []
        while (line := self._framer.next_line()) is not None:
            text = line.decode("utf-8", "replace")
            if self._env_lines is not None:
                if text or not _has_threadid(self._env_lines):
                    # An empty line before `agi_threadid` cannot be Asterisk's terminator (it always
                    # sends that key): it came inside a caller-controlled value (LF LF in the caller ID).
                    self._env_lines.append(text)
                    if len(self._env_lines) > self._max_env_lines:
                        raise AgiProtocolError(f"env longer than {self._max_env_lines} lines")
                    continue
                events.append(env_from_lines(self._env_lines))
                self._env_lines = None
                self._framer.reply_mode = True
                continue
            event = self._reply_event(text)
            if event is not None:
                events.append(event)
        return events

    def _reply_event(self, text: str) -> AgiReply | HangupNotice | BadLine | None:
        if self._usage is not None:  # `520-...` usage text until `520 End of proper usage.`
            self._usage.append(text)
            if text.startswith("520 ") or len(self._usage) > _MAX_USAGE_LINES:
                usage, self._usage = self._usage, None
                return AgiReply(520, "", "\n".join(usage), None, "\n".join(usage))
            return None
        if text == "HANGUP":
            return HANGUP_NOTICE
        if text.startswith("520-"):
            self._usage = [text]
            return None
        try:
            return parse_reply(text)
        except AgiProtocolError:
            return BadLine(text)


# ---------------------------------------------------------------- commands

_VERB = re.compile(r"[A-Z]+(?: [A-Z]+)*")
_NEEDS_QUOTES = re.compile(r'[\s"\\]')
_FORBIDDEN = re.compile(r"[\r\n\x00]")


def quote_arg(value: str) -> str:
    """One command argument as res_agi's parse_args reads it: bare if safe, else double-quoted.

    Inside quotes parse_args takes `\\"` and `\\\\` literally; CR, LF and NUL are refused because a
    newline ends the command and whatever follows would run as the next one.
    """
    if _FORBIDDEN.search(value):
        raise AgiCommandError(f"CR, LF or NUL in AGI argument {value[:40]!r}")
    if value and not _NEEDS_QUOTES.search(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(verb: str, *args: str | int) -> bytes:
    """`STREAM FILE hello-world ""` + LF: exactly one command line, or AgiCommandError."""
    if not _VERB.fullmatch(verb):
        raise AgiCommandError(f"bad AGI verb {verb!r}")
    words = [verb, *(quote_arg(str(arg)) for arg in args)]
    line = (" ".join(words) + "\n").encode("utf-8")
    if len(line) > MAX_COMMAND_BYTES:
        raise AgiCommandError(f"AGI command longer than {MAX_COMMAND_BYTES} bytes")
    return line
