"""The attempt state machine: typed AMI events in, attempt updates out (pure, no I/O, no clock).

One tracker follows every open dial of one AMI connection. Correlation never relies on message order
or on caller-controlled fields:

* the Originate's `ActionID` for `OriginateResponse` (echoed on success and failure, finding 3);
* `ChannelId`/`OtherChannelId` (`<attempt>-a`/`-b`) which become the Local halves' Uniqueids and the
  call's Linkedid (`originate_answered_channelid`);
* without them, `VarSet CC_ATTEMPT_ID` on the Local halves right after `Newchannel`, claiming channels
  that arrived earlier with the same Linkedid.

An attempt is finished only when its `OriginateResponse` has arrived *and* every channel it owns has
hung up: a failed OriginateResponse may come after all the Hangups or before them (finding 2).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from dialer.ami.events import (
    AgentComplete,
    AgentConnect,
    AmiEvent,
    ChannelRef,
    DialEnd,
    Hangup,
    Newchannel,
    OriginateResponse,
    QueueCallerAbandon,
    UserEvent,
    VarSet,
)
from dialer.attempts.outcome import DialEvidence, Outcome, decide_outcome, is_customer_channel

ATTEMPT_VARIABLE = "CC_ATTEMPT_ID"
ABANDON_VARIABLE = "CC_ABANDONED"  # set by the dialplan's safe-harbour context
AMD_VARIABLE = "AMDSTATUS"  # app_amd result: HUMAN | MACHINE | NOTSURE | HANGUP
RECORDING_VARIABLE = "MIXMONITOR_FILENAME"
DIAL_RESULT_EVENT = "OutboundDialResult"
# A preview call goes to one agent with Dial, not through the queue, so there is no AgentConnect /
# AgentComplete: the dialplan's [connect] context sends these user events instead.
AGENT_CONNECTED_EVENT = "CCAgentConnected"
AGENT_COMPLETE_EVENT = "CCAgentComplete"
_MAX_PENDING_LINKEDIDS = 20_000


@dataclass(frozen=True, slots=True)
class AttemptAnswered:
    attempt_id: str
    at: float
    channel: str


@dataclass(frozen=True, slots=True)
class AttemptConnected:
    attempt_id: str
    at: float
    member_name: str
    interface: str


@dataclass(frozen=True, slots=True)
class AttemptAgentDone:
    attempt_id: str
    at: float
    interface: str
    talk_time_s: int


@dataclass(frozen=True, slots=True)
class AttemptFinished:
    attempt_id: str
    outcome: Outcome
    at: float
    hangup_cause: int | None
    answered_at: float | None
    connected_at: float | None
    agent_interface: str
    channel: str
    uniqueid: str
    linkedid: str
    recording: str
    detail: str = ""


AttemptUpdate = AttemptAnswered | AttemptConnected | AttemptAgentDone | AttemptFinished


@dataclass(slots=True)
class _Track:
    attempt_id: str
    action_id: str
    started_at: float
    open_channels: set[str] = field(default_factory=set)
    seen_channels: dict[str, str] = field(default_factory=dict)  # uniqueid -> channel name
    linkedid: str = ""
    originate: OriginateResponse | None = None
    customer_uniqueid: str = ""
    customer_cause: int | None = None
    customer_dial_status: str = ""
    dialplan_dial_status: str = ""
    dialplan_cause: int | None = None
    answered_at: float | None = None
    connected_at: float | None = None
    agent_interface: str = ""
    abandoned: bool = False
    machine: bool = False
    recording: str = ""
    last_cause: int | None = None
    registered_ids: list[str] = field(default_factory=list)


class AttemptTracker:
    """Follows open attempts across interleaved events of many calls."""

    def __init__(self) -> None:
        self._by_attempt: dict[str, _Track] = {}
        self._by_action: dict[str, _Track] = {}
        self._by_uniqueid: dict[str, _Track] = {}
        self._by_linkedid: dict[str, _Track] = {}
        # Channels seen before we knew their attempt, keyed by Linkedid (Newchannel precedes VarSet).
        self._pending: OrderedDict[str, dict[str, str]] = OrderedDict()

    # ---- registration -------------------------------------------------------------------------
    def expect(self, attempt_id: str, action_id: str, *, at: float, channel_ids: Iterable[str] = ()) -> None:
        """Register a dial whose ledger row exists and whose Originate is about to be sent."""
        track = _Track(attempt_id=attempt_id, action_id=action_id, started_at=at)
        self._by_attempt[attempt_id] = track
        self._by_action[action_id] = track
        for uid in channel_ids:
            self._by_uniqueid[uid] = track
            track.registered_ids.append(uid)
            # With ChannelId the first Local half's id is also the call's Linkedid.
            if not track.linkedid:
                track.linkedid = uid
                self._by_linkedid[uid] = track

    def originate_refused(self, attempt_id: str, *, at: float, message: str) -> list[AttemptUpdate]:
        """The Originate action got `Response: Error`: nothing was dialled."""
        track = self._by_attempt.get(attempt_id)
        if track is None:
            return []
        return [self._finish(track, at, outcome=Outcome.ERROR, detail=message)]

    def mark_abandoned(self, attempt_id: str) -> None:
        """The engine found no agent within the safe-harbour limit."""
        track = self._by_attempt.get(attempt_id)
        if track is not None:
            track.abandoned = True

    @property
    def open_attempts(self) -> list[str]:
        return list(self._by_attempt)

    def is_open(self, attempt_id: str) -> bool:
        return attempt_id in self._by_attempt

    # ---- events -------------------------------------------------------------------------------
    def feed(self, event: AmiEvent, at: float) -> list[AttemptUpdate]:
        """Apply one event; return what it changed for our attempts."""
        if isinstance(event, VarSet):
            return self._on_varset(event, at)
        if isinstance(event, Newchannel):
            self._on_newchannel(event.ref)
            return []
        if isinstance(event, Hangup):
            return self._on_hangup(event, at)
        if isinstance(event, DialEnd):
            return self._on_dial_end(event, at)
        if isinstance(event, OriginateResponse):
            return self._on_originate_response(event, at)
        if isinstance(event, UserEvent):
            if event.name in (AGENT_CONNECTED_EVENT, AGENT_COMPLETE_EVENT) and event.ref is not None:
                return self._on_direct_agent(event, at)
            self._on_user_event(event)
            return []
        if isinstance(event, AgentConnect):
            return self._on_agent_connect(event, at)
        if isinstance(event, AgentComplete):
            track = self._track_of(event.ref)
            if track is not None:
                return [AttemptAgentDone(track.attempt_id, at, event.interface, event.talk_time_s)]
            return []
        if isinstance(event, QueueCallerAbandon):
            track = self._track_of(event.ref)
            if track is not None:
                track.abandoned = True
        return []

    def _track_of(self, ref: ChannelRef) -> _Track | None:
        return self._by_uniqueid.get(ref.uniqueid) or self._by_linkedid.get(ref.linkedid)

    def _attach(self, track: _Track, uniqueid: str, channel: str) -> None:
        if not uniqueid:
            return
        self._by_uniqueid[uniqueid] = track
        if uniqueid not in track.seen_channels:
            track.seen_channels[uniqueid] = channel
            track.open_channels.add(uniqueid)
        if is_customer_channel(channel) and not track.customer_uniqueid:
            track.customer_uniqueid = uniqueid

    def _on_newchannel(self, ref: ChannelRef) -> None:
        track = self._track_of(ref)
        if track is not None:
            self._attach(track, ref.uniqueid, ref.channel)
            return
        group = self._pending.get(ref.linkedid)
        if group is None:
            group = self._pending[ref.linkedid] = {}
            if len(self._pending) > _MAX_PENDING_LINKEDIDS:
                # Calls that are not ours (inbound, agent legs) are never claimed; forget the oldest.
                self._pending.popitem(last=False)
        group[ref.uniqueid] = ref.channel

    def _on_varset(self, event: VarSet, at: float) -> list[AttemptUpdate]:
        name = event.variable
        if name == ATTEMPT_VARIABLE:
            track = self._by_attempt.get(event.value)
            if track is None:
                return []
            if not track.linkedid and event.linkedid:
                track.linkedid = event.linkedid
                self._by_linkedid[event.linkedid] = track
            for uid, channel in self._pending.pop(event.linkedid, {}).items():
                self._attach(track, uid, channel)
            self._attach(track, event.uniqueid, event.channel)
            return []
        if name not in (ABANDON_VARIABLE, AMD_VARIABLE, RECORDING_VARIABLE):
            return []
        track = self._by_uniqueid.get(event.uniqueid) or self._by_linkedid.get(event.linkedid)
        if track is None:
            return []
        if name == ABANDON_VARIABLE and event.value == "1":
            track.abandoned = True
        elif name == AMD_VARIABLE:
            track.machine = event.value.upper() == "MACHINE"
        elif name == RECORDING_VARIABLE and not track.recording:
            track.recording = event.value
        return []

    def _on_dial_end(self, event: DialEnd, at: float) -> list[AttemptUpdate]:
        if not is_customer_channel(event.dest_channel):
            return []  # the originate leg's DialEnd can say NOANSWER for a 603 (finding 1)
        track = self._by_uniqueid.get(event.dest_uniqueid)
        if track is None and event.ref is not None:
            track = self._track_of(event.ref)
        if track is None:
            return []
        self._attach(track, event.dest_uniqueid, event.dest_channel)
        track.customer_dial_status = event.dial_status
        if event.dial_status == "ANSWER" and track.answered_at is None:
            track.answered_at = at
            return [AttemptAnswered(track.attempt_id, at, event.dest_channel)]
        return []

    def _on_user_event(self, event: UserEvent) -> None:
        if event.name != DIAL_RESULT_EVENT or event.ref is None:
            return
        track = self._track_of(event.ref)
        if track is None:
            return
        track.dialplan_dial_status = event.get("DialStatus")
        cause = event.get("HangupCause")
        track.dialplan_cause = int(cause) if cause.isdigit() else None
        if not track.recording:
            track.recording = event.get("RecFile")

    def _on_direct_agent(self, event: UserEvent, at: float) -> list[AttemptUpdate]:
        assert event.ref is not None
        track = self._track_of(event.ref)
        if track is None:
            return []
        interface = event.get("Interface")
        if event.name == AGENT_CONNECTED_EVENT:
            track.connected_at = at
            track.agent_interface = interface
            return [AttemptConnected(track.attempt_id, at, interface, interface)]
        talk = event.get("TalkTime")
        return [AttemptAgentDone(track.attempt_id, at, interface, int(talk) if talk.isdigit() else 0)]

    def _on_agent_connect(self, event: AgentConnect, at: float) -> list[AttemptUpdate]:
        track = self._track_of(event.ref)
        if track is None:
            return []
        track.connected_at = at
        track.agent_interface = event.interface
        return [AttemptConnected(track.attempt_id, at, event.member_name, event.interface)]

    def _on_originate_response(self, event: OriginateResponse, at: float) -> list[AttemptUpdate]:
        track = self._by_action.get(event.action_id)
        if track is None:
            return []
        track.originate = event
        updates: list[AttemptUpdate] = []
        if event.success:
            if event.uniqueid:
                self._attach(track, event.uniqueid, event.channel)
                if not track.linkedid:
                    track.linkedid = event.uniqueid
                    self._by_linkedid[event.uniqueid] = track
            if track.answered_at is None:
                # A direct SIP channel has no DialEnd of its own: success is the answer.
                track.answered_at = at
                updates.append(AttemptAnswered(track.attempt_id, at, event.channel))
        if self._done(track):
            updates.append(self._finish(track, at))
        return updates

    def _on_hangup(self, event: Hangup, at: float) -> list[AttemptUpdate]:
        ref = event.ref
        track = self._track_of(ref)
        if track is None:
            group = self._pending.get(ref.linkedid)
            if group is not None:
                group.pop(ref.uniqueid, None)
                if not group:
                    del self._pending[ref.linkedid]
            return []
        self._attach(track, ref.uniqueid, ref.channel)
        track.open_channels.discard(ref.uniqueid)
        track.last_cause = event.cause
        if ref.uniqueid == track.customer_uniqueid:
            track.customer_cause = event.cause
        if self._done(track):
            return [self._finish(track, at)]
        return []

    @staticmethod
    def _done(track: _Track) -> bool:
        return track.originate is not None and not track.open_channels

    # ---- recovery -----------------------------------------------------------------------------
    def reconcile(self, live: Iterable[ChannelRef], *, at: float) -> list[AttemptUpdate]:
        """After a reconnect: keep attempts that still have channels, end the rest (DESIGN §2.6)."""
        live_refs = list(live)
        live_uids = {ref.uniqueid for ref in live_refs}
        live_links = {ref.linkedid for ref in live_refs}
        updates: list[AttemptUpdate] = []
        for track in list(self._by_attempt.values()):
            alive = track.linkedid in live_links or any(uid in live_uids for uid in track.seen_channels)
            if alive:
                for ref in live_refs:
                    if ref.linkedid == track.linkedid or ref.uniqueid in track.seen_channels:
                        self._attach(track, ref.uniqueid, ref.channel)
                track.open_channels &= live_uids
                # The OriginateResponse may have been lost with the connection; the live channels prove
                # the dial happened, so from now on their Hangups alone end the attempt.
                if track.originate is None:
                    track.originate = OriginateResponse(track.action_id, True, 4, "", "")
                continue
            answered = track.answered_at is not None
            outcome = None if answered else Outcome.LOST_ON_RECONNECT
            updates.append(self._finish(track, at, outcome=outcome, detail="not found after reconnect"))
        return updates

    def sweep(self, *, now: float, max_age_s: float) -> list[AttemptUpdate]:
        """End attempts that heard nothing for too long (e.g. `Events: off`, a lost OriginateResponse)."""
        return [
            self._finish(track, now, outcome=Outcome.LOST_ON_RECONNECT, detail="no events")
            for track in list(self._by_attempt.values())
            if now - track.started_at > max_age_s and track.answered_at is None
        ]

    def _finish(
        self, track: _Track, at: float, *, outcome: Outcome | None = None, detail: str = ""
    ) -> AttemptFinished:
        originate = track.originate
        evidence = DialEvidence(
            answered=track.answered_at is not None,
            customer_cause=track.customer_cause,
            customer_dial_status=track.customer_dial_status,
            dialplan_dial_status=track.dialplan_dial_status,
            dialplan_cause=track.dialplan_cause,
            originate_success=originate.success if originate else None,
            originate_reason=originate.reason if originate else None,
            any_channel=bool(track.seen_channels),
            abandoned=track.abandoned,
            machine=track.machine,
        )
        self._forget(track)
        cause = track.customer_cause if track.customer_cause is not None else track.last_cause
        first_uid = next(iter(track.seen_channels), "")
        return AttemptFinished(
            attempt_id=track.attempt_id,
            outcome=outcome or decide_outcome(evidence),
            at=at,
            hangup_cause=cause,
            answered_at=track.answered_at,
            connected_at=track.connected_at,
            agent_interface=track.agent_interface,
            channel=track.seen_channels.get(first_uid, originate.channel if originate else ""),
            uniqueid=first_uid,
            linkedid=track.linkedid,
            recording=track.recording,
            detail=detail,
        )

    def _forget(self, track: _Track) -> None:
        self._by_attempt.pop(track.attempt_id, None)
        self._by_action.pop(track.action_id, None)
        for uid in (*track.seen_channels, *track.registered_ids):
            if self._by_uniqueid.get(uid) is track:
                del self._by_uniqueid[uid]
        if track.linkedid and self._by_linkedid.get(track.linkedid) is track:
            del self._by_linkedid[track.linkedid]
