"""How a dial ended: the outcome rules the real Asterisk 20 transcripts forced (pure).

Through `Local/` channels a failed Originate reports `Reason: 0` for busy, 603, 503, Dial timeout and
CHANUNAVAIL alike, so the customer leg's own evidence decides (fixtures README, finding 1):
the Hangup cause of the SIP/PJSIP channel first (it tells 603 "rejected" apart from 486 "busy", which
DialStatus does not: chan_sip reports 603 as BUSY), then the DialEnd whose DestChannel is that channel,
then the dialplan's `OutboundDialResult` user event, and the Originate `Reason` last. The DialEnd of the
originate leg (`DestChannel: Local/...;1`) is never used: it says NOANSWER for a 603.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    CONGESTION = "congestion"
    UNREACHABLE = "unreachable"
    ABANDONED = "abandoned"  # answered, no agent within the safe-harbour limit
    MACHINE = "machine"  # answering machine detected
    LOST_ON_RECONNECT = "lost_on_reconnect"  # gone from CoreShowChannels after an AMI reconnect
    ERROR = "error"  # the Originate action itself was refused


# Q.850 causes seen on the customer leg (fixtures: 16, 17, 19, 20, 21, 34) plus their close relatives.
_CAUSE_OUTCOME: dict[int, Outcome] = {
    1: Outcome.UNREACHABLE,  # unallocated number
    3: Outcome.UNREACHABLE,  # no route to destination
    17: Outcome.BUSY,
    18: Outcome.NO_ANSWER,  # no user responding
    19: Outcome.NO_ANSWER,
    20: Outcome.UNREACHABLE,  # subscriber absent (CHANUNAVAIL)
    21: Outcome.REJECTED,  # SIP 603 Decline
    22: Outcome.UNREACHABLE,  # number changed
    27: Outcome.UNREACHABLE,  # destination out of order
    28: Outcome.UNREACHABLE,  # invalid number format
    34: Outcome.CONGESTION,
    38: Outcome.CONGESTION,  # network out of order
    41: Outcome.CONGESTION,  # temporary failure
    42: Outcome.CONGESTION,
}

_DIAL_STATUS_OUTCOME: dict[str, Outcome] = {
    "ANSWER": Outcome.ANSWERED,
    "BUSY": Outcome.BUSY,
    "NOANSWER": Outcome.NO_ANSWER,
    "CANCEL": Outcome.NO_ANSWER,  # Asterisk cancelled because the Originate Timeout ran out
    "CONGESTION": Outcome.CONGESTION,
    "CHANUNAVAIL": Outcome.UNREACHABLE,
}

# OriginateResponse Reason on a failure (fixtures README table, direct channel column).
_REASON_OUTCOME: dict[int, Outcome] = {
    0: Outcome.UNREACHABLE,  # only trusted when no channel ever existed (originate_unreachable)
    1: Outcome.NO_ANSWER,  # hung up before answer
    3: Outcome.NO_ANSWER,
    5: Outcome.BUSY,
    8: Outcome.CONGESTION,
}


@dataclass(frozen=True, slots=True)
class DialEvidence:
    """What the events said about the customer leg, gathered by the tracker."""

    answered: bool = False
    customer_cause: int | None = None  # Hangup Cause of the SIP/PJSIP channel
    customer_dial_status: str = ""  # DialEnd DialStatus whose DestChannel is the SIP/PJSIP channel
    dialplan_dial_status: str = ""  # UserEvent OutboundDialResult DialStatus
    dialplan_cause: int | None = None
    originate_success: bool | None = None
    originate_reason: int | None = None
    any_channel: bool = False
    abandoned: bool = False
    machine: bool = False


def decide_outcome(evidence: DialEvidence) -> Outcome:
    """The outcome of a finished dial from everything the events said."""
    answered = (
        evidence.answered
        or evidence.originate_success is True
        or evidence.customer_dial_status == "ANSWER"
        or evidence.dialplan_dial_status == "ANSWER"
    )
    if answered:
        if evidence.machine:
            return Outcome.MACHINE
        if evidence.abandoned:
            return Outcome.ABANDONED
        return Outcome.ANSWERED
    if evidence.customer_cause is not None and evidence.customer_cause in _CAUSE_OUTCOME:
        return _CAUSE_OUTCOME[evidence.customer_cause]
    if evidence.customer_dial_status in _DIAL_STATUS_OUTCOME:
        return _DIAL_STATUS_OUTCOME[evidence.customer_dial_status]
    if evidence.dialplan_cause is not None and evidence.dialplan_cause in _CAUSE_OUTCOME:
        return _CAUSE_OUTCOME[evidence.dialplan_cause]
    if evidence.dialplan_dial_status in _DIAL_STATUS_OUTCOME:
        return _DIAL_STATUS_OUTCOME[evidence.dialplan_dial_status]
    if evidence.originate_reason is not None:
        if evidence.originate_reason == 0 and evidence.any_channel:
            # Reason 0 through a Local channel says nothing (finding 1); with channels but no customer
            # evidence the far end was never reached.
            return Outcome.UNREACHABLE
        return _REASON_OUTCOME.get(evidence.originate_reason, Outcome.UNREACHABLE)
    return Outcome.UNREACHABLE


def is_customer_channel(channel: str) -> bool:
    """The far-end leg: a real technology channel, not a `Local/` half."""
    return bool(channel) and not channel.startswith("Local/")
