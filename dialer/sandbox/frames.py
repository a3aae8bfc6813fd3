"""Bytes the sandbox PBX writes, in the header order Asterisk 20 uses (fixtures `originate_*`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

Headers = Sequence[tuple[str, str]]

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}


@dataclass(slots=True)
class SandboxChannel:
    name: str
    uniqueid: str
    linkedid: str
    state: int = 0
    caller_num: str = ""
    caller_name: str = ""
    context: str = ""
    exten: str = ""
    application: str = ""
    hung_up: bool = False
    created: float = 0.0

    def snapshot(self, prefix: str = "") -> list[tuple[str, str]]:
        """The channel snapshot block of an event (`Dest` prefix for the dialled side)."""
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.caller_num or "<unknown>"),
            (f"{prefix}CallerIDName", self.caller_name or "<unknown>"),
            (f"{prefix}ConnectedLineNum", "<unknown>"),
            (f"{prefix}ConnectedLineName", "<unknown>"),
            (f"{prefix}Language", "en"),
            (f"{prefix}AccountCode", ""),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", "1"),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


def encode(lines: Headers) -> bytes:
    """One AMI message: `Key: value` lines and the blank line."""
    return ("".join(f"{k}: {v}\r\n" for k, v in lines) + "\r\n").encode("utf-8")


def event(name: str, system_name: str, *blocks: Headers, privilege: str = "call,all") -> bytes:
    """An event with the standard preamble (timestampevents = yes, like the recording PBX)."""
    lines: list[tuple[str, str]] = [
        ("Event", name),
        ("Privilege", privilege),
        ("Timestamp", f"{time.time():.6f}"),
        ("SystemName", system_name),
    ]
    for block in blocks:
        lines.extend(block)
    return encode(lines)


def response(action_id: str | None, status: str, message: str = "", *extra: tuple[str, str]) -> bytes:
    """A `Response:` to an action."""
    lines: list[tuple[str, str]] = [("Response", status)]
    if action_id is not None:
        lines.append(("ActionID", action_id))
    if message:
        lines.append(("Message", message))
    lines.extend(extra)
    return encode(lines)


def parse_action(raw: bytes) -> dict[str, list[str]]:
    """An action's headers (a key may repeat: `Variable`)."""
    fields: dict[str, list[str]] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), []).append(value.strip())
    return fields
