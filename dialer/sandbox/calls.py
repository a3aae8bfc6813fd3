"""One originated call in the sandbox PBX: the event sequence per far-end behaviour.

Sequences follow the recorded Asterisk 20 transcripts: three channels (Local ;1, Local ;2 and the trunk
leg), `VarSet CC_ATTEMPT_ID` on both Local halves right after `Newchannel`, the originate-leg DialEnd
that says NOANSWER for a 603, and a failed `OriginateResponse` (Reason 0, `Uniqueid: <unknown>`) that
comes *after* the Hangups for busy/603/503 but *before* them when the Originate timeout runs out.
Answered calls into the `connect` context join the campaign queue; with no free member within the
safe-harbour limit the caller hears the safe-harbour message and the call counts as abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dialer.sandbox.callmodel import CallPlan, FarEnd
from dialer.sandbox.frames import SandboxChannel

if TYPE_CHECKING:
    from dialer.sandbox.pbx import SandboxPbx

CAUSE = {
    FarEnd.BUSY: (17, "BUSY", "BUSY"),
    FarEnd.REJECT: (21, "BUSY", "NOANSWER"),  # chan_sip reports 603 as BUSY (fixture originate_rejected)
    FarEnd.CONGESTION: (34, "CONGESTION", "CONGESTION"),
    FarEnd.UNREACHABLE: (20, "CHANUNAVAIL", "CHANUNAVAIL"),
}


@dataclass(slots=True)
class OriginateRequest:
    action_id: str
    channel: str  # dial string: Local/<num>@outbound, PJSIP/<num>@trunk, SIP/...
    number: str
    context: str
    exten: str
    application: str
    variables: dict[str, str]
    timeout_s: float
    caller_num: str
    caller_name: str
    channel_id: str = ""
    other_channel_id: str = ""


@dataclass(slots=True, eq=False)
class SandboxCall:
    request: OriginateRequest
    plan: CallPlan
    channels: list[SandboxChannel] = field(default_factory=list)
    hangup_requested: asyncio.Event = field(default_factory=asyncio.Event)
    agent_interface: str = ""
    queue: str = ""
    direct_agent: bool = False


def write_tone_recording(path: Path, seconds: float, *, seed: int) -> None:
    """A real 8 kHz 16-bit mono WAV: alternating 'speech' tone bursts and pauses, like two talkers."""
    rate = 8000
    seconds = max(0.5, min(seconds, 120.0))
    frames = bytearray()
    for i in range(int(rate * seconds)):
        t = i / rate
        turn = int(t / 1.7 + seed) % 3  # agent, customer, pause
        amplitude = (0, 6000, 4000)[turn] if (t * 4) % 1 < 0.8 else 0
        freq = (300 + 40 * (seed % 5), 220, 0)[turn]
        frames += struct.pack("<h", int(amplitude * math.sin(2 * math.pi * freq * t)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))


class CallRunner:
    """Plays one call's events through the PBX's broadcast."""

    def __init__(self, pbx: SandboxPbx, call: SandboxCall) -> None:
        self.pbx = pbx
        self.call = call
        self.emit: Callable[..., None] = pbx.emit

    async def sleep(self, seconds: float) -> bool:
        """Wait in call time; True if a Hangup action cut it short."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.call.hangup_requested.wait(), seconds * self.pbx.time_scale)
            return True
        return False

    async def run(self) -> None:
        req = self.call.request
        if not req.channel.startswith(("Local/", "SIP/", "PJSIP/")):
            self._originate_response(success=False, reason=0, channel=None)
            return
        if req.channel.startswith("Local/"):
            await self._run_local()
        else:
            await self._run_direct()

    # ---- helpers ------------------------------------------------------------------------------
    def _new(self, name: str, uniqueid: str, linkedid: str, state: int) -> SandboxChannel:
        req = self.call.request
        channel = SandboxChannel(
            name=name,
            uniqueid=uniqueid,
            linkedid=linkedid,
            state=state,
            caller_num=req.caller_num,
            caller_name=req.caller_name,
            context=req.context or "outbound",
            exten=req.exten or req.number,
            created=time.monotonic(),
        )
        self.call.channels.append(channel)
        self.emit("Newchannel", channel.snapshot(), [("Exten", channel.exten)])
        return channel

    def _varsets(self, channel: SandboxChannel) -> None:
        for name, value in self.call.request.variables.items():
            self.emit("VarSet", channel.snapshot(), [("Variable", name), ("Value", value)])

    def _state(self, channel: SandboxChannel, state: int) -> None:
        channel.state = state
        self.emit("Newstate", channel.snapshot())

    def _hangup(self, channel: SandboxChannel, cause: int, text: str = "") -> None:
        if channel.hung_up:
            return
        channel.hung_up = True
        self.emit(
            "Hangup", channel.snapshot(), [("Cause", str(cause)), ("Cause-txt", text or f"cause {cause}")]
        )

    def _originate_response(self, *, success: bool, reason: int, channel: SandboxChannel | None) -> None:
        req = self.call.request
        self.emit(
            "OriginateResponse",
            [
                ("ActionID", req.action_id),
                ("Response", "Success" if success else "Failure"),
                ("Channel", channel.name if channel and success else req.channel),
                ("Context", req.context),
                ("Exten", req.exten),
                ("Reason", str(reason)),
                ("Uniqueid", channel.uniqueid if channel and success else "<unknown>"),
                ("CallerIDNum", req.caller_num or "<unknown>"),
                ("CallerIDName", req.caller_name or "<unknown>"),
            ],
        )

    def _dial_result(self, leg2: SandboxChannel, status: str, cause: int, recfile: str) -> None:
        req = self.call.request
        self.emit(
            "UserEvent",
            leg2.snapshot(),
            [
                ("UserEvent", "OutboundDialResult"),
                ("Number", req.number),
                ("DialStatus", status),
                ("HangupCause", str(cause)),
                ("RecFile", recfile),
                ("Uniqueid", leg2.uniqueid),
                ("Attempt", req.variables.get("CC_ATTEMPT_ID", "")),
            ],
        )

    def _cdr(self, channel: SandboxChannel, disposition: str, billable: int) -> None:
        self.emit(
            "Cdr",
            [
                ("AccountCode", ""),
                ("Source", channel.caller_num),
                ("Destination", self.call.request.number),
                ("Channel", channel.name),
                ("Disposition", disposition),
                ("Duration", str(int(time.monotonic() - channel.created))),
                ("BillableSeconds", str(billable)),
                ("UniqueID", channel.uniqueid),
            ],
            privilege="cdr,all",
        )

    # ---- Local/<number>@outbound: the production shape --------------------------------------
    async def _run_local(self) -> None:
        pbx, req, plan = self.pbx, self.call.request, self.call.plan
        local = f"{req.channel.split('/', 1)[1].split('@')[0]}@{req.channel.split('@', 1)[-1]}"
        serial = pbx.next_local_serial()
        uid1 = req.channel_id or pbx.next_uniqueid()
        uid2 = req.other_channel_id or pbx.next_uniqueid()
        leg1 = self._new(f"Local/{local}-{serial:08x};1", uid1, uid1, 0)
        leg2 = self._new(f"Local/{local}-{serial:08x};2", uid2, uid1, 4)
        self._varsets(leg1)
        self._varsets(leg2)
        self.emit("DialBegin", leg1.snapshot("Dest"))
        recfile = f"out-{req.number}-{uid2}.wav"
        self.emit("VarSet", leg2.snapshot(), [("Variable", "MIXMONITOR_FILENAME"), ("Value", recfile)])
        self.emit("MixMonitorStart", leg2.snapshot())
        if plan.far_end is FarEnd.UNREACHABLE:
            await self.sleep(plan.ring_s)
            self.emit("SoftHangupRequest", leg2.snapshot(), [("Cause", "16")])
            self._hangup(leg2, 20, "Subscriber absent")
            self.emit("DialEnd", leg1.snapshot("Dest"), [("DialStatus", "CHANUNAVAIL")])
            self._originate_response(success=False, reason=0, channel=None)
            self._hangup(leg1, 20, "Subscriber absent")
            return
        sip = self._new(f"PJSIP/{pbx.trunk}-{pbx.next_local_serial():08x}", pbx.next_uniqueid(), uid1, 0)
        self.emit("DialBegin", leg2.snapshot(), sip.snapshot("Dest"))
        if plan.far_end in CAUSE:
            cut = await self.sleep(plan.ring_s)
            cause, status, leg1_status = CAUSE[plan.far_end]
            if cut:
                cause, status, leg1_status = 16, "CANCEL", "CANCEL"
            self.emit("DialEnd", leg2.snapshot(), sip.snapshot("Dest"), [("DialStatus", status)])
            self._hangup(sip, cause)
            self._dial_result(leg2, status, cause, recfile)
            self.emit("DialEnd", leg1.snapshot("Dest"), [("DialStatus", leg1_status)])
            self._hangup(leg2, cause)
            self._cdr(leg2, "BUSY" if status == "BUSY" else "FAILED", 0)
            self._hangup(leg1, cause)
            self._originate_response(success=False, reason=0, channel=None)
            return
        self._state(sip, 5)
        self._state(leg1, 5)
        self.emit("DialState", leg2.snapshot(), sip.snapshot("Dest"), [("DialStatus", "RINGING")])
        ring_limit = min(req.timeout_s, pbx.dial_timeout_s)
        if plan.far_end is FarEnd.NO_ANSWER or plan.ring_s >= ring_limit:
            cut = await self.sleep(ring_limit)
            cause = 16 if cut else 19
            self._originate_response(success=False, reason=1 if cut else 3, channel=None)
            self.emit("DialEnd", leg2.snapshot(), sip.snapshot("Dest"), [("DialStatus", "CANCEL")])
            self._hangup(leg1, cause)
            self._hangup(sip, cause)
            self._dial_result(leg2, "CANCEL", cause, recfile)
            self._hangup(leg2, cause)
            self._cdr(leg2, "NO ANSWER", 0)
            return
        if await self.sleep(plan.ring_s):
            self._originate_response(success=False, reason=1, channel=None)
            for channel in (sip, leg2, leg1):
                self._hangup(channel, 16)
            return
        await self._answered(leg1, leg2, sip, recfile)

    async def _answered(
        self, leg1: SandboxChannel, leg2: SandboxChannel, sip: SandboxChannel, recfile: str
    ) -> None:
        pbx, req, plan = self.pbx, self.call.request, self.call.plan
        answered_at = time.monotonic()
        self._state(sip, 6)
        self.emit("DialEnd", leg2.snapshot(), sip.snapshot("Dest"), [("DialStatus", "ANSWER")])
        self._state(leg2, 6)
        bridge = f"bridge-{leg2.uniqueid}"
        self.emit("BridgeEnter", sip.snapshot(), [("BridgeUniqueid", bridge)])
        self._state(leg1, 6)
        self.emit("DialEnd", leg1.snapshot("Dest"), [("DialStatus", "ANSWER")])
        self._originate_response(success=True, reason=4, channel=leg1)
        self.emit("BridgeEnter", leg2.snapshot(), [("BridgeUniqueid", bridge)])
        talk = plan.talk_s
        abandoned = False
        if plan.far_end is FarEnd.MACHINE:
            self.emit("VarSet", leg1.snapshot(), [("Variable", "AMDSTATUS"), ("Value", "MACHINE")])
            talk = min(talk, 8.0)
        elif req.context == "connect" and req.variables.get("CC_AGENT"):
            # Preview: the dialplan Dials the one agent who asked and reports it with user events.
            self.call.agent_interface = req.variables["CC_AGENT"]
            self.call.direct_agent = True
            self.emit(
                "UserEvent",
                leg1.snapshot(),
                [("UserEvent", "CCAgentConnected"), ("Interface", self.call.agent_interface)],
            )
        elif req.context == "connect":
            queue = req.variables.get("CC_QUEUE", "")
            self.call.queue = queue
            self.emit("QueueCallerJoin", leg1.snapshot(), [("Queue", queue), ("Position", "1")])
            member = await pbx.wait_for_member(queue, pbx.safe_harbour_s)
            if member is None:
                abandoned = True
                self.emit("QueueCallerAbandon", leg1.snapshot(), [("Queue", queue), ("HoldTime", "2")])
                self.emit("VarSet", leg1.snapshot(), [("Variable", "CC_ABANDONED"), ("Value", "1")])
                talk = pbx.safe_harbour_message_s
            else:
                self.call.agent_interface = member.interface
                member_block = [
                    ("Queue", queue),
                    ("MemberName", member.name),
                    ("Interface", member.interface),
                    ("HoldTime", "0"),
                ]
                self.emit("AgentConnect", leg1.snapshot(), member_block)
        cut = await self.sleep(talk)
        if self.call.direct_agent:
            talk_time = int(time.monotonic() - answered_at)
            self.emit(
                "UserEvent",
                leg1.snapshot(),
                [
                    ("UserEvent", "CCAgentComplete"),
                    ("Interface", self.call.agent_interface),
                    ("TalkTime", str(talk_time)),
                ],
            )
        elif self.call.agent_interface:
            talk_time = int(time.monotonic() - answered_at)
            self.emit(
                "AgentComplete",
                leg1.snapshot(),
                [
                    ("Queue", self.call.queue),
                    ("MemberName", self.call.agent_interface),
                    ("Interface", self.call.agent_interface),
                    ("TalkTime", str(talk_time)),
                    ("Reason", "agent" if cut else "caller"),
                ],
            )
            pbx.release_member(self.call.queue, self.call.agent_interface)
        if cut:
            self.emit("SoftHangupRequest", leg1.snapshot(), [("Cause", "16")])
        else:
            self.emit("HangupRequest", sip.snapshot(), [("Cause", "16")])
        self._hangup(sip, 16, "Normal Clearing")
        self._dial_result(leg2, "ANSWER", 16, recfile)
        self._hangup(leg1, 16, "Normal Clearing")
        self._hangup(leg2, 16, "Normal Clearing")
        billable = int(time.monotonic() - answered_at)
        self._cdr(leg1, "ANSWERED", billable)
        if pbx.recordings_dir is not None and not abandoned:
            path = pbx.recordings_dir / recfile
            await asyncio.to_thread(write_tone_recording, path, talk, seed=len(req.number))
            self.emit("MixMonitorStop", leg2.snapshot(), [("MixMonitorFile", str(path))])

    # ---- direct trunk channel (no Local, no dialplan) ------------------------------------------
    async def _run_direct(self) -> None:
        pbx, plan = self.pbx, self.call.plan
        uid = self.call.request.channel_id or pbx.next_uniqueid()
        sip = self._new(
            f"{self.call.request.channel.split('@')[0]}-{pbx.next_local_serial():08x}", uid, uid, 0
        )
        self._varsets(sip)
        direct_reason = {FarEnd.BUSY: 5, FarEnd.REJECT: 5, FarEnd.CONGESTION: 8, FarEnd.UNREACHABLE: 0}
        if plan.far_end in direct_reason:
            await self.sleep(plan.ring_s)
            self._hangup(sip, CAUSE[plan.far_end][0])
            self._originate_response(success=False, reason=direct_reason[plan.far_end], channel=None)
            return
        self._state(sip, 5)
        limit = self.call.request.timeout_s
        if plan.far_end is FarEnd.NO_ANSWER or plan.ring_s >= limit:
            await self.sleep(limit)
            self._originate_response(success=False, reason=3, channel=None)
            self._hangup(sip, 19)
            return
        await self.sleep(plan.ring_s)
        self._state(sip, 6)
        self._originate_response(success=True, reason=4, channel=sip)
        await self.sleep(plan.talk_s)
        self._hangup(sip, 16, "Normal Clearing")
