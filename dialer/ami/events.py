"""Typed AMI events: raw `AmiMessage` headers become frozen values at the adapter boundary.

Only the events the dialer acts on get a type; everything else becomes `OtherEvent` so nothing is lost
but nothing downstream reads a raw header dict. Conversion is on the hot path of event ingestion
(`burst_events`: ~2,000 messages for 20 calls), so each converter reads headers once into a dict and
VarSet, the most frequent event, is kept minimal.

Caller-controlled fields (`CallerIDNum`, `CallerIDName`, `ConnectedLine*`) are carried as data only:
with chan_sip a raw CR LF in the SIP user part reaches AMI unescaped (fixtures README, finding 4), so
no decision here is taken from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dialer.ami.message import AmiMessage

UNKNOWN_UNIQUEID = "<unknown>"  # OriginateResponse Failure carries this (fixtures README, finding 3)


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """The snapshot fields every channel event shares."""

    channel: str
    uniqueid: str
    linkedid: str
    state: int  # ChannelState: 0 down, 4 ring, 5 ringing, 6 up
    context: str
    exten: str
    caller_num: str
    caller_name: str


@dataclass(frozen=True, slots=True)
class OriginateResponse:
    action_id: str
    success: bool
    reason: int  # old control-frame code: 4 answered, 5 busy, 8 congestion, 3 no answer, 0 anything else
    channel: str  # real channel on success, the dial string asked for on failure
    uniqueid: str  # "" when Asterisk sent "<unknown>"


@dataclass(frozen=True, slots=True)
class Newchannel:
    ref: ChannelRef


@dataclass(frozen=True, slots=True)
class Newstate:
    ref: ChannelRef


@dataclass(frozen=True, slots=True)
class VarSet:
    uniqueid: str
    linkedid: str
    channel: str
    variable: str
    value: str


@dataclass(frozen=True, slots=True)
class DialBegin:
    ref: ChannelRef | None  # None when the dialling side is the Originate itself (no calling channel)
    dest_channel: str
    dest_uniqueid: str


@dataclass(frozen=True, slots=True)
class DialEnd:
    ref: ChannelRef | None
    dest_channel: str
    dest_uniqueid: str
    dial_status: str  # ANSWER BUSY CONGESTION NOANSWER CANCEL CHANUNAVAIL


@dataclass(frozen=True, slots=True)
class BridgeEnter:
    ref: ChannelRef
    bridge_id: str


@dataclass(frozen=True, slots=True)
class Hangup:
    ref: ChannelRef
    cause: int
    cause_text: str


@dataclass(frozen=True, slots=True)
class UserEvent:
    ref: ChannelRef | None
    name: str
    fields: tuple[tuple[str, str], ...]

    def get(self, key: str, default: str = "") -> str:
        """A field of the user event (case-insensitive)."""
        wanted = key.lower()
        for k, v in self.fields:
            if k.lower() == wanted:
                return v
        return default


@dataclass(frozen=True, slots=True)
class Cdr:
    uniqueid: str
    channel: str
    dest_channel: str
    disposition: str
    duration_s: int
    billable_s: int
    user_field: str
    start: str
    answer: str
    end: str


@dataclass(frozen=True, slots=True)
class AgentConnect:
    ref: ChannelRef  # the caller (customer) channel
    queue: str
    member_name: str
    interface: str
    hold_time_s: int


@dataclass(frozen=True, slots=True)
class AgentComplete:
    ref: ChannelRef
    queue: str
    member_name: str
    interface: str
    talk_time_s: int
    reason: str


@dataclass(frozen=True, slots=True)
class QueueCallerAbandon:
    ref: ChannelRef
    queue: str


@dataclass(frozen=True, slots=True)
class CoreShowChannel:
    ref: ChannelRef
    action_id: str
    application: str
    duration: str


@dataclass(frozen=True, slots=True)
class FullyBooted:
    uptime_s: int


@dataclass(frozen=True, slots=True)
class Shutdown:
    restart: bool
    cleanly: bool


@dataclass(frozen=True, slots=True)
class OtherEvent:
    name: str
    headers: tuple[tuple[str, str], ...]


AmiEvent = (
    OriginateResponse
    | Newchannel
    | Newstate
    | VarSet
    | DialBegin
    | DialEnd
    | BridgeEnter
    | Hangup
    | UserEvent
    | Cdr
    | AgentConnect
    | AgentComplete
    | QueueCallerAbandon
    | CoreShowChannel
    | FullyBooted
    | Shutdown
    | OtherEvent
)


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _ref(h: dict[str, str]) -> ChannelRef:
    return ChannelRef(
        channel=h.get("channel", ""),
        uniqueid=h.get("uniqueid", ""),
        linkedid=h.get("linkedid", ""),
        state=_int(h.get("channelstate")),
        context=h.get("context", ""),
        exten=h.get("exten", ""),
        caller_num=h.get("calleridnum", ""),
        caller_name=h.get("calleridname", ""),
    )


def _optional_ref(h: dict[str, str]) -> ChannelRef | None:
    # DialBegin/DialEnd of the Originate leg have no calling channel: only Dest* headers (fixtures).
    return _ref(h) if "channel" in h else None


def _originate_response(h: dict[str, str]) -> OriginateResponse:
    uniqueid = h.get("uniqueid", "")
    return OriginateResponse(
        action_id=h.get("actionid", ""),
        success=h.get("response", "").lower() == "success",
        reason=_int(h.get("reason")),
        channel=h.get("channel", ""),
        uniqueid="" if uniqueid == UNKNOWN_UNIQUEID else uniqueid,
    )


def _user_event(h: dict[str, str], m: AmiMessage) -> UserEvent:
    return UserEvent(ref=_optional_ref(h), name=h.get("userevent", ""), fields=m.headers)


def _cdr(h: dict[str, str]) -> Cdr:
    return Cdr(
        uniqueid=h.get("uniqueid", ""),
        channel=h.get("channel", ""),
        dest_channel=h.get("destinationchannel", ""),
        disposition=h.get("disposition", ""),
        duration_s=_int(h.get("duration")),
        billable_s=_int(h.get("billableseconds")),
        user_field=h.get("userfield", ""),
        start=h.get("starttime", ""),
        answer=h.get("answertime", ""),
        end=h.get("endtime", ""),
    )


_CONVERTERS: dict[str, Callable[[dict[str, str], AmiMessage], AmiEvent]] = {
    "OriginateResponse": lambda h, m: _originate_response(h),
    "Newchannel": lambda h, m: Newchannel(_ref(h)),
    "Newstate": lambda h, m: Newstate(_ref(h)),
    "VarSet": lambda h, m: VarSet(
        uniqueid=h.get("uniqueid", ""),
        linkedid=h.get("linkedid", ""),
        channel=h.get("channel", ""),
        variable=h.get("variable", ""),
        value=h.get("value", ""),
    ),
    "DialBegin": lambda h, m: DialBegin(
        _optional_ref(h), h.get("destchannel", ""), h.get("destuniqueid", "")
    ),
    "DialEnd": lambda h, m: DialEnd(
        _optional_ref(h), h.get("destchannel", ""), h.get("destuniqueid", ""), h.get("dialstatus", "")
    ),
    "BridgeEnter": lambda h, m: BridgeEnter(_ref(h), h.get("bridgeuniqueid", "")),
    "Hangup": lambda h, m: Hangup(_ref(h), _int(h.get("cause")), h.get("cause-txt", "")),
    "UserEvent": _user_event,
    "Cdr": lambda h, m: _cdr(h),
    "AgentConnect": lambda h, m: AgentConnect(
        _ref(h),
        h.get("queue", ""),
        h.get("membername", ""),
        h.get("interface", ""),
        _int(h.get("holdtime")),
    ),
    "AgentComplete": lambda h, m: AgentComplete(
        _ref(h),
        h.get("queue", ""),
        h.get("membername", ""),
        h.get("interface", ""),
        _int(h.get("talktime")),
        h.get("reason", ""),
    ),
    "QueueCallerAbandon": lambda h, m: QueueCallerAbandon(_ref(h), h.get("queue", "")),
    "CoreShowChannel": lambda h, m: CoreShowChannel(
        _ref(h), h.get("actionid", ""), h.get("application", ""), h.get("duration", "")
    ),
    "FullyBooted": lambda h, m: FullyBooted(_int(h.get("uptime"))),
    "Shutdown": lambda h, m: Shutdown(
        restart=h.get("restart", "").lower() == "true", cleanly=h.get("shutdown", "") == "Cleanly"
    ),
}


_CALLER_CONTROLLED = frozenset(
    {
        "calleridnum",
        "calleridname",
        "connectedlinenum",
        "connectedlinename",
        "destcalleridnum",
        "destcalleridname",
        "destconnectedlinenum",
        "destconnectedlinename",
        "callerid",
    }
)


def resolve_headers(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Lower-cased header dict that an injected copy of a header cannot override.

    A raw CR LF in a caller-controlled value (fixtures README, finding 4) inserts fake headers right
    after that value. Asterisk writes each key once, in a fixed order, so for a key first seen before
    the first caller-controlled header the first copy is authentic, and for a key after it the last copy
    is (the injected ones sit in between).
    """
    resolved: dict[str, str] = {}
    caller_seen = False
    first_wins: set[str] = set()
    for key, value in headers:
        k = key.lower()
        if k in _CALLER_CONTROLLED:
            caller_seen = True
        if k not in resolved:
            resolved[k] = value
            if not caller_seen:
                first_wins.add(k)
        elif k not in first_wins:
            resolved[k] = value
    return resolved


def to_event(message: AmiMessage) -> AmiEvent:
    """Convert one `Event:` message into its typed value (unknown names become `OtherEvent`)."""
    converter = _CONVERTERS.get(message.name)
    if converter is None:
        return OtherEvent(message.name, message.headers)
    return converter(resolve_headers(message.headers), message)
