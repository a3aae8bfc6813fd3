"""Who may hear which recording, and HTTP Range arithmetic (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.models import Role

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class UnsatisfiableRange(ValueError):
    pass


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One `bytes=` range per RFC 9110 §14.1.2 (multi-range is answered with the whole file: None)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # a syntactically invalid or multi-range header is ignored, per RFC 9110 §14.2
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0:
            raise UnsatisfiableRange(header)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise UnsatisfiableRange(header)
    return ByteRange(start, end)


def may_listen(*, role: Role, user_id: int | None, call_agent_id: int | None) -> bool:
    """Agents hear only their own calls; QA, supervisors and admins hear all calls."""
    if role is Role.AGENT:
        return user_id is not None and call_agent_id == user_id
    return True
