"""The AMI message value shared by the parser, the client and event conversion; and action encoding.

An AMI message is an ordered list of `Key: value` headers. Order and repeated keys matter:
`Action: Command` answers with one `Output:` header per line (fixture `command_action`), and Originate
takes one `Variable:` header per channel variable. So headers are a tuple of pairs, never a dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MessageKind = Literal["response", "event", "banner"]


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One message from Asterisk: a `Response`, an `Event`, or the connection banner line."""

    kind: MessageKind
    name: str  # the Response value ("Success", "Error", ...), the Event name, or the banner line
    headers: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of `key` (case-insensitive), or `default`."""
        wanted = key.lower()
        for k, v in self.headers:
            if k.lower() == wanted:
                return v
        return default

    def get_all(self, key: str) -> list[str]:
        """Every value of `key` (case-insensitive), in message order."""
        wanted = key.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    @property
    def action_id(self) -> str | None:
        """The `ActionID` header: set on responses and on events caused by one of our actions."""
        return self.get("ActionID")


def encode_action(name: str, fields: Sequence[tuple[str, str]]) -> bytes:
    """Encode one action as `Action: name` plus `fields`, ending with the blank line; refuse CR/LF."""
    # A CR or LF inside a value would end the header early and let the rest be read as headers chosen
    # by whoever controlled the value (a lead's name, a caller-supplied number): refuse, don't strip.
    lines = [f"Action: {name}"]
    for key, value in (("Action", name), *fields):
        if "\r" in key or "\n" in key or ":" in key or not key:
            raise ValueError(f"invalid AMI header name {key!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"CR/LF not allowed in AMI header {key!r}")
    lines.extend(f"{key}: {value}" for key, value in fields)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
