"""A fake Asterisk for FastAGI tests: replays one agi_*.jsonl transcript against our server over real TCP.

Rules (the fixture's `recv` is what Asterisk sent, `send` what the FastAGI server sent):
* Connect, then write every `recv` chunk up to the first `send`, each as its own write + drain so the
  recorded chunk boundaries reach the server (`byte_by_byte` writes one byte at a time instead).
* For each `send`: read the server's next command line and require it to equal the recorded bytes
  exactly, then write the `recv` chunks recorded after it (replies and `HANGUP` notices).
* After the last `send` the server must half-close: the next read is EOF with no extra bytes. Only then
  does the fake Asterisk close its side, as the real one did (`note` lines are skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.asterisk_fixtures import TranscriptLine, load_transcript


class ReplayMismatch(AssertionError):
    """The server did not send what the transcript recorded."""


@dataclass(slots=True)
class ReplayOutcome:
    commands: list[bytes] = field(default_factory=list)
    half_closed: bool = False
    elapsed_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ReplayStep:
    expected: bytes  # the command the server must send
    replies: tuple[bytes, ...]  # recv chunks written after it


def split_transcript(lines: Sequence[TranscriptLine]) -> tuple[tuple[bytes, ...], tuple[ReplayStep, ...]]:
    """The recv chunks before the first send, then one step per send."""
    prologue: list[bytes] = []
    steps: list[tuple[bytes, list[bytes]]] = []
    for line in lines:
        data = line.data.encode("utf-8")
        if line.direction == "send":
            steps.append((data, []))
        elif line.direction == "recv":
            (steps[-1][1] if steps else prologue).append(data)
    return tuple(prologue), tuple(ReplayStep(cmd, tuple(replies)) for cmd, replies in steps)


async def _write(writer: asyncio.StreamWriter, chunk: bytes, byte_by_byte: bool) -> None:
    pieces = [chunk[i : i + 1] for i in range(len(chunk))] if byte_by_byte else [chunk]
    for piece in pieces:
        writer.write(piece)
        await writer.drain()


async def replay_agi(
    port: int,
    transcript: str | Sequence[TranscriptLine],
    *,
    host: str = "127.0.0.1",
    byte_by_byte: bool = False,
    io_timeout_s: float = 5.0,
) -> ReplayOutcome:
    """Play `transcript` as Asterisk against the FastAGI server at host:port; raise ReplayMismatch."""
    lines = load_transcript(transcript) if isinstance(transcript, str) else transcript
    prologue, steps = split_transcript(lines)
    outcome = ReplayOutcome()
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for chunk in prologue:
            await _write(writer, chunk, byte_by_byte)
        for index, step in enumerate(steps):
            got = await asyncio.wait_for(reader.readline(), io_timeout_s)
            if got != step.expected:
                raise ReplayMismatch(f"command {index}: expected {step.expected!r}, got {got!r}")
            outcome.commands.append(got)
            for chunk in step.replies:
                await _write(writer, chunk, byte_by_byte)
        rest = await asyncio.wait_for(reader.read(), io_timeout_s)
        if rest:
            raise ReplayMismatch(f"unexpected bytes after the last recorded command: {rest!r}")
        outcome.half_closed = True
        outcome.elapsed_s = time.monotonic() - started
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return outcome


def env_lines(name: str) -> list[TranscriptLine]:
    """Only the env block of a fixture (the recv chunks before the first command)."""
    lines = load_transcript(name)
    first_send = next(i for i, line in enumerate(lines) if line.direction == "send")
    return [line for line in lines[:first_send] if line.direction == "recv"]


def with_script(lines: Sequence[TranscriptLine], script: str) -> list[TranscriptLine]:
    """The same transcript with the script part of agi_network_script/agi_request replaced by `script`."""
    out = []
    for line in lines:
        data = line.data
        if line.direction == "recv":
            data = re.sub(r"(?m)^agi_network_script: .*$", f"agi_network_script: {script}", data)
            data = re.sub(r"(?m)^(agi_request: agi://[^/\n]*/).*$", rf"\g<1>{script}", data)
        out.append(TranscriptLine(t=line.t, direction=line.direction, data=data))
    return out


def send(data: str) -> TranscriptLine:
    return TranscriptLine(t=0.0, direction="send", data=data)


def recv(data: str) -> TranscriptLine:
    return TranscriptLine(t=0.0, direction="recv", data=data)
