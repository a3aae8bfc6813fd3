"""Incremental AMI framing: bytes in, `AmiMessage` values out. Pure: no sockets, no clock.

Framing rules, and the fixture that forced each one (../shared/fixtures/asterisk/README.md):

* Asterisk first sends a banner as one `\\r\\n`-terminated line with no blank line after it
  (`Asterisk Call Manager/9.0.0`, `login_ok`). Only the first line of a connection can be a banner:
  use one parser per TCP connection.
* Every other message is `Key: value\\r\\n` lines ended by an empty line. Reads end anywhere: mid-line,
  mid-CRLF, or a lone `\\r\\n` terminator in its own read (`command_action`, `events_off`,
  `burst_events`). So we buffer bytes and decode only complete messages; decoding chunks before
  reassembly (a panoramisk pitfall) can split a multi-byte UTF-8 character.
* Messages come out in stream order, also when one read holds many (wazo-amid reversed them).
* A line without `: ` is appended to the previous header's value after a `\\n`. No Asterisk 20
  fixture has such a line; old Asterisk sent raw `Command` output this way, and a raw CR LF injected
  into an unescaped field (`CallerIDNum`, README finding 4) lands here when the injected text has no
  colon. Injected text that *does* look like `Key: value`, or that holds an empty line, cannot be told
  apart from Asterisk's own headers or messages at this layer: never base security decisions on AMI
  message boundaries or on fields a caller can set.
* A complete message whose first header is neither `Response` nor `Event` is counted in
  `AmiParser.discarded` and dropped; it has no meaning in the AMI protocol.

Speed: one `bytes.split` per read, one decode and one `str.split` per message, no per-byte loops.
"""

from __future__ import annotations

from dialer.ami.message import AmiMessage

_TERMINATOR = b"\r\n\r\n"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # far above any real message (20 calls' events = 1 MB total)


class AmiProtocolError(Exception):
    """The byte stream cannot be AMI (a message grew past the size limit)."""


class AmiParser:
    """Turns the bytes of one AMI connection into messages, buffering across reads."""

    __slots__ = ("_buffer", "_expect_banner", "discarded", "max_message_bytes")

    def __init__(self, *, expect_banner: bool = True, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self._buffer = b""
        self._expect_banner = expect_banner
        self.discarded = 0
        self.max_message_bytes = max_message_bytes

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[AmiMessage]:
        """Add one read's bytes; return the messages completed by it, in stream order."""
        buffer = self._buffer + data if self._buffer else data
        out: list[AmiMessage] = []
        if self._expect_banner:
            end = buffer.find(b"\r\n")
            if end < 0:
                self._keep(buffer)
                return out
            self._expect_banner = False
            first = buffer[:end]
            if b":" not in first:
                out.append(AmiMessage("banner", first.decode("utf-8", "replace"), ()))
                buffer = buffer[end + 2 :]
            # else: a server without a banner; the line is an ordinary header.
        if _TERMINATOR not in buffer:
            self._keep(buffer)
            return out
        frames = buffer.split(_TERMINATOR)
        self._keep(frames.pop())
        for frame in frames:
            message = self._parse(frame)
            if message is not None:
                out.append(message)
        return out

    def _keep(self, rest: bytes) -> None:
        if len(rest) > self.max_message_bytes:
            raise AmiProtocolError(f"AMI message exceeds {self.max_message_bytes} bytes without terminator")
        self._buffer = rest

    def _parse(self, frame: bytes) -> AmiMessage | None:
        headers: list[tuple[str, str]] = []
        for line in frame.decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep:
                headers.append((key, value))
            elif not line:
                # Extra blank lines between messages (a 3rd CRLF) leave empty lines at a frame's start.
                continue
            elif line.endswith(":"):
                headers.append((line[:-1], ""))
            elif headers:
                prev_key, prev_value = headers[-1]
                headers[-1] = (prev_key, f"{prev_value}\n{line}")
            else:
                headers.append(("", line))  # text before any header: kept, then rejected below
        if not headers:
            return None
        first_key, first_value = headers[0]
        if first_key == "Event":
            return AmiMessage("event", first_value, tuple(headers))
        if first_key == "Response":
            return AmiMessage("response", first_value, tuple(headers))
        lowered = first_key.lower()
        if lowered == "event":
            return AmiMessage("event", first_value, tuple(headers))
        if lowered == "response":
            return AmiMessage("response", first_value, tuple(headers))
        self.discarded += 1
        return None
