"""A TCP server that plays a recorded AMI transcript to a real client (tests only).

Rules:
* Each `recv` line is written as its own `write()` + `drain()`, so real chunk boundaries reach the client
  (`rechunk_seed` re-splits them at random points instead, to test framing).
* At a `send` line the server waits for the client's next action and checks the action name. Actions
  named in `ignore_actions` (e.g. `Ping` when testing liveness) are recorded and otherwise ignored.
* ActionIDs are matched by order: the transcript's ActionID of each `send` maps to the ActionID the client
  really used, and `ActionID: <recorded>` lines in later `recv` data are rewritten to the client's id.
  The rewrite keeps chunk boundaries at the same offset inside the rewritten line, so a line split
  across two reads stays split.
* `note` lines: one mentioning EOF closes the connection; `reconnected` waits for the next connection.
  A note whose text contains a key of `gates` waits for that asyncio.Event (to hold the script while a
  test does something, e.g. leave an action pending before a restart).
* `drop_at_byte`: on the first connection, write only that many bytes of the recv stream, then abort the
  socket (a connection dropped mid-frame) and skip the script up to the next `reconnected` note.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from dataclasses import dataclass

from tests.asterisk_fixtures import TranscriptLine, load_transcript

_ACTION_ID_LINE = re.compile(rb"ActionID: ([^\r\n]*)\r\n")


@dataclass(frozen=True, slots=True)
class ReceivedAction:
    connection: int
    name: str
    headers: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str | None:
        """First value of `key`."""
        return next((v for k, v in self.headers if k.lower() == key.lower()), None)


def _parse_action(raw: bytes) -> ReceivedAction | None:
    headers = []
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        if line:
            key, _, value = line.partition(": ")
            headers.append((key, value))
    if not headers:
        return None
    return ReceivedAction(connection=0, name=headers[0][1], headers=tuple(headers))


def _rewrite(chunks: list[bytes], id_map: dict[str, str]) -> list[bytes]:
    """Replace recorded ActionIDs by the client's in a run of chunks, keeping boundaries in place."""
    data = b"".join(chunks)
    out = bytearray()
    spans: list[tuple[int, int, int, int]] = []  # old start, old end, new start, new length
    last = 0
    for match in _ACTION_ID_LINE.finditer(data):
        client_id = id_map.get(match.group(1).decode("utf-8", "replace"))
        if client_id is None:
            continue
        start, end = match.span(1)
        out += data[last:start]
        spans.append((start, end, len(out), len(client_id.encode())))
        out += client_id.encode()
        last = end
    out += data[last:]

    def new_offset(old: int) -> int:
        shift = 0
        for start, end, new_start, new_len in spans:
            if old >= end:
                shift = new_start + new_len - end
            elif old > start:
                return new_start + min(old - start, new_len)
            else:
                break
        return old + shift

    result, prev, old_pos = [], 0, 0
    for chunk in chunks:
        old_pos += len(chunk)
        cut = new_offset(old_pos)
        result.append(bytes(out[prev:cut]))
        prev = cut
    return result


class AmiReplayServer:
    """Plays one transcript over 127.0.0.1; `async with` starts and stops it."""

    def __init__(
        self,
        transcript: str | list[TranscriptLine],
        *,
        ignore_actions: frozenset[str] = frozenset(),
        gates: dict[str, asyncio.Event] | None = None,
        rechunk_seed: int | None = None,
        drop_at_byte: int | None = None,
    ) -> None:
        self.lines = load_transcript(transcript) if isinstance(transcript, str) else transcript
        self.ignore_actions = ignore_actions
        self.gates = gates or {}
        self.rechunk_seed = rechunk_seed
        self.drop_at_byte = drop_at_byte
        self.received: list[ReceivedAction] = []
        self.errors: list[str] = []
        self.connections = 0
        self.port = 0
        self.finished = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._conns: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self._script: asyncio.Task[None] | None = None
        self._action_seen = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> AmiReplayServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._script = asyncio.create_task(self._play())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._script is not None
        self._server.close()
        for task in (self._script, *self._readers):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self._server.wait_closed()

    def names(self) -> list[str]:
        """Names of every action received, over all connections, in order."""
        return [a.name for a in self.received]

    async def wait_for_action(self, name: str, timeout: float = 5.0) -> ReceivedAction:
        """Wait until an action called `name` has been received."""
        async with asyncio.timeout(timeout):
            while True:
                for action in self.received:
                    if action.name == name:
                        return action
                self._action_seen.clear()
                await self._action_seen.wait()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        await self._conns.put((reader, writer))

    async def _read_actions(
        self, number: int, reader: asyncio.StreamReader, queue: asyncio.Queue[ReceivedAction]
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                raw = await reader.readuntil(b"\r\n\r\n")
                parsed = _parse_action(raw)
                if parsed is None:
                    continue
                action = ReceivedAction(number, parsed.name, parsed.headers)
                self.received.append(action)
                self._action_seen.set()
                if action.name not in self.ignore_actions:
                    await queue.put(action)

    async def _play(self) -> None:
        rng = random.Random(self.rechunk_seed)
        id_map: dict[str, str] = {}
        connection = 0
        writer: asyncio.StreamWriter | None = None
        actions: asyncio.Queue[ReceivedAction] = asyncio.Queue()
        written = 0
        pending_recv: list[bytes] = []

        async def open_next() -> asyncio.StreamWriter:
            nonlocal connection, actions
            reader, new_writer = await self._conns.get()
            connection += 1
            actions = asyncio.Queue()
            self._readers.append(asyncio.create_task(self._read_actions(connection, reader, actions)))
            return new_writer

        async def flush() -> None:
            nonlocal written
            if not pending_recv:
                return
            chunks = _rewrite(pending_recv, id_map)
            pending_recv.clear()
            if self.rechunk_seed is not None:
                data = b"".join(chunks)
                chunks, pos = [], 0
                while pos < len(data):
                    step = rng.randint(1, 64)
                    chunks.append(data[pos : pos + step])
                    pos += step
            assert writer is not None
            for chunk in chunks:
                if (
                    self.drop_at_byte is not None
                    and connection == 1
                    and written + len(chunk) >= self.drop_at_byte
                ):
                    writer.write(chunk[: self.drop_at_byte - written])
                    await writer.drain()
                    writer.transport.abort()
                    raise _Dropped
                writer.write(chunk)
                await writer.drain()
                written += len(chunk)

        dropped = False
        try:
            writer = await open_next()
            for line in self.lines:
                if dropped:
                    # After a fault the rest of that connection's script is skipped.
                    if line.direction != "note" or line.data != "reconnected":
                        continue
                    dropped = False
                if line.direction == "recv":
                    pending_recv.append(line.data.encode("utf-8"))
                    continue
                try:
                    await flush()
                except _Dropped:
                    dropped = line.direction != "note" or line.data != "reconnected"
                    if dropped:
                        continue
                if line.direction == "send":
                    expected = _parse_action(line.data.encode("utf-8"))
                    assert expected is not None
                    got = await actions.get()
                    if got.name != expected.name:
                        self.errors.append(f"expected action {expected.name}, got {got.name}")
                        writer.close()
                        return
                    recorded_id, client_id = expected.get("ActionID"), got.get("ActionID")
                    if recorded_id and client_id:
                        id_map[recorded_id] = client_id
                elif "EOF" in line.data:
                    writer.close()
                elif line.data == "reconnected":
                    writer = await open_next()
                else:
                    for key, gate in self.gates.items():
                        if key in line.data:
                            await gate.wait()
            with contextlib.suppress(_Dropped):
                await flush()
        finally:
            self.finished.set()
        # Later connections (a client that should not reconnect, or reconnects after the script) are
        # counted by _accept and closed here.
        while True:
            _, extra = await self._conns.get()
            extra.close()


class _Dropped(Exception):
    pass
