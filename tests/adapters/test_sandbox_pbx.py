"""The sandbox PBX over real TCP, seen through our own AMI client and attempt tracker.

Each far-end behaviour must end in the outcome the real transcript of the same scenario gives, which
proves the sandbox's event sequences carry the same evidence (and the same traps) as Asterisk 20's.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from dialer.ami.client import AmiClient
from dialer.ami.events import Shutdown, to_event
from dialer.ami.message import AmiMessage
from dialer.attempts.outcome import Outcome
from dialer.attempts.tracker import AttemptFinished, AttemptTracker, AttemptUpdate
from dialer.sandbox.callmodel import CallModel, FarEnd
from dialer.sandbox.pbx import SandboxPbx

FAST = 0.01  # 1 s of call time = 10 ms


class Harness:
    def __init__(self, pbx: SandboxPbx) -> None:
        self.pbx = pbx
        self.tracker = AttemptTracker()
        self.updates: list[AttemptUpdate] = []
        self.other: list[object] = []
        self.client = AmiClient(
            host="127.0.0.1",
            port=pbx.port,
            username="dialer",
            secret="dialer-secret",
            use_md5=True,
            on_event=self.on_event,
            ping_interval=0,
            reconnect_initial=0.05,
            reconnect_max=0.2,
        )

    async def on_event(self, message: AmiMessage) -> None:
        event = to_event(message)
        self.other.append(event)
        self.updates.extend(self.tracker.feed(event, time.monotonic()))

    async def originate(
        self, attempt: str, number: str, *, context: str = "connect", tech: str = "Local", queue: str = ""
    ) -> AmiMessage:
        self.tracker.expect(
            attempt, attempt, at=time.monotonic(), channel_ids=(f"{attempt}-a", f"{attempt}-b")
        )
        channel = f"Local/{number}@outbound" if tech == "Local" else f"PJSIP/{number}@carrier1"
        fields = [
            ("Channel", channel),
            ("Context", context),
            ("Exten", "s"),
            ("Priority", "1"),
            ("CallerID", '"Campaign" <4001234567>'),
            ("Timeout", "30000"),
            ("Async", "true"),
            ("Variable", f"CC_ATTEMPT_ID={attempt}"),
            ("Variable", f"CC_QUEUE={queue}"),
            ("ChannelId", f"{attempt}-a"),
            ("OtherChannelId", f"{attempt}-b"),
        ]
        return await self.client.send_action("Originate", fields, action_id=attempt)

    async def finished(self, count: int, timeout: float = 5.0) -> dict[str, AttemptFinished]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = {u.attempt_id: u for u in self.updates if isinstance(u, AttemptFinished)}
            if len(done) >= count:
                return done
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {len(done)} of {count} attempts finished")


@pytest.fixture
async def harness():
    overrides = {
        "13800000001": FarEnd.ANSWER,
        "13800000002": FarEnd.BUSY,
        "13800000003": FarEnd.REJECT,
        "13800000004": FarEnd.NO_ANSWER,
        "13800000005": FarEnd.CONGESTION,
        "13800000006": FarEnd.UNREACHABLE,
        "13800000007": FarEnd.MACHINE,
    }
    pbx = SandboxPbx(model=CallModel(overrides=overrides, talk_mean_s=3, talk_min_s=1), time_scale=FAST)
    await pbx.start()
    h = Harness(pbx)
    await h.client.connect()
    yield h
    await h.client.close()
    await pbx.stop()


EXPECTED = [
    ("13800000001", "Local", Outcome.ABANDONED),  # answered, no queue member: safe harbour
    ("13800000002", "Local", Outcome.BUSY),
    ("13800000003", "Local", Outcome.REJECTED),
    ("13800000004", "Local", Outcome.NO_ANSWER),
    ("13800000005", "Local", Outcome.CONGESTION),
    ("13800000006", "Local", Outcome.UNREACHABLE),
    ("13800000007", "Local", Outcome.MACHINE),
    ("13800000001", "PJSIP", Outcome.ANSWERED),
    ("13800000002", "PJSIP", Outcome.BUSY),
    ("13800000003", "PJSIP", Outcome.REJECTED),
    ("13800000004", "PJSIP", Outcome.NO_ANSWER),
    ("13800000005", "PJSIP", Outcome.CONGESTION),
]


async def test_every_far_end_behaviour_gives_the_fixture_outcome(harness: Harness) -> None:
    for n, (number, tech, _) in enumerate(EXPECTED):
        reply = await harness.originate(f"att-{n}", number, tech=tech, queue="sales")
        assert reply.get("Message") == "Originate successfully queued"
    done = await harness.finished(len(EXPECTED))
    got = [done[f"att-{n}"].outcome for n in range(len(EXPECTED))]
    assert got == [outcome for _, _, outcome in EXPECTED]
    assert harness.tracker.open_attempts == []


async def test_queue_member_gets_the_answered_call_and_hangup_action_ends_it(harness: Harness) -> None:
    client = harness.client
    reply = await client.send_action(
        "QueueAdd", [("Queue", "sales"), ("Interface", "Local/1001@agents"), ("MemberName", "agent1")]
    )
    assert reply.name == "Success"
    dup = await client.send_action("QueueAdd", [("Queue", "sales"), ("Interface", "Local/1001@agents")])
    assert dup.get("Message") == "Unable to add interface: Already there"
    harness.pbx.model.overrides["13800000011"] = FarEnd.ANSWER
    object.__setattr__(harness.pbx.model, "talk_mean_s", 1000.0)  # long call: we hang it up ourselves
    await harness.originate("att-q", "13800000011", queue="sales")
    for _ in range(300):
        if any(type(u).__name__ == "AttemptConnected" for u in harness.updates):
            break
        await asyncio.sleep(0.01)
    connected = [u for u in harness.updates if type(u).__name__ == "AttemptConnected"]
    assert connected and connected[0].interface == "Local/1001@agents"
    response, channels = await client.send_list_action("CoreShowChannels")
    assert response.get("EventList") == "start"
    names = [m.get("Channel") for m in channels if m.name == "CoreShowChannel"]
    assert len(names) == 3
    hung = await client.send_action("Hangup", [("Channel", names[0] or "")])
    assert hung.get("Message") == "Channel Hungup"
    done = await harness.finished(1)
    assert done["att-q"].outcome is Outcome.ANSWERED
    assert done["att-q"].agent_interface == "Local/1001@agents"


async def test_restart_sends_shutdown_and_client_reconnects(harness: Harness) -> None:
    await harness.pbx.restart(down_s=0.1)
    for _ in range(200):
        if harness.client.generation >= 2 and harness.client.connected:
            break
        await asyncio.sleep(0.02)
    assert harness.client.generation >= 2
    assert any(isinstance(e, Shutdown) and e.restart for e in harness.other)
    pong = await harness.client.send_action("Ping")
    assert pong.get("Ping") == "Pong"


async def test_wrong_secret_is_refused() -> None:
    pbx = SandboxPbx(model=CallModel())
    await pbx.start()
    client = AmiClient(host="127.0.0.1", port=pbx.port, username="dialer", secret="nope", ping_interval=0)
    with pytest.raises(Exception, match=r"(?i)auth"):
        await client.connect()
    await pbx.stop()
