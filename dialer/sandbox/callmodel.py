"""The sandbox PBX's call model: what happens when a number is dialled (pure, seeded).

Outcome mixes and ring/talk time distributions are parameters, so the quick start, the integration tests
and the pacing benchmark can each ask for the traffic they need. Each dial's fate is drawn from a
`random.Random` seeded with (model seed, number, nth dial of that number): the same campaign run twice
sees the same outcomes, and a redial of a busy number can succeed.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from enum import StrEnum


class FarEnd(StrEnum):
    """What the far end does with the INVITE (mirrors the fixtures' SIPp scenarios)."""

    ANSWER = "answer"  # 180 then 200 (originate_answered)
    BUSY = "busy"  # 486 (originate_busy)
    REJECT = "reject"  # 603 Decline (originate_rejected)
    NO_ANSWER = "no_answer"  # rings until the timeout (originate_no_answer)
    CONGESTION = "congestion"  # 503 (originate_congestion)
    UNREACHABLE = "unreachable"  # CHANUNAVAIL (originate_unreachable_local)
    MACHINE = "machine"  # answered by a voicemail greeting (AMDSTATUS=MACHINE)


@dataclass(frozen=True, slots=True)
class CallPlan:
    far_end: FarEnd
    ring_s: float  # until answer, or until the far end rejects
    talk_s: float  # after the answer, if answered


@dataclass(frozen=True, slots=True)
class CallModel:
    """Traffic shape of the simulated customers."""

    answer_rate: float = 0.3
    busy_rate: float = 0.1
    reject_rate: float = 0.03
    congestion_rate: float = 0.02
    unreachable_rate: float = 0.05
    machine_rate: float = 0.0
    ring_mean_s: float = 6.0
    ring_min_s: float = 1.0
    reject_after_s: float = 3.0
    talk_mean_s: float = 60.0
    talk_min_s: float = 5.0
    seed: int = 7
    # Exact fates for chosen numbers (E.164 or dialled digits), for tests that need a known outcome.
    overrides: dict[str, FarEnd] = field(default_factory=dict)

    def plan(self, number: str, nth_dial: int = 0) -> CallPlan:
        """The fate of the `nth_dial` call to `number`."""
        digest = hashlib.blake2b(f"{self.seed}|{number}|{nth_dial}".encode(), digest_size=8).digest()
        rng = random.Random(int.from_bytes(digest, "big"))
        far_end = self.overrides.get(number) or self._draw(rng)
        ring = max(self.ring_min_s, rng.expovariate(1.0 / self.ring_mean_s))
        talk = max(self.talk_min_s, rng.expovariate(1.0 / self.talk_mean_s))
        if far_end in (FarEnd.BUSY, FarEnd.CONGESTION, FarEnd.UNREACHABLE):
            ring = 0.2
        elif far_end is FarEnd.REJECT:
            ring = self.reject_after_s
        return CallPlan(far_end=far_end, ring_s=ring, talk_s=talk)

    def _draw(self, rng: random.Random) -> FarEnd:
        x = rng.random()
        for far_end, rate in (
            (FarEnd.ANSWER, self.answer_rate),
            (FarEnd.MACHINE, self.machine_rate),
            (FarEnd.BUSY, self.busy_rate),
            (FarEnd.REJECT, self.reject_rate),
            (FarEnd.CONGESTION, self.congestion_rate),
            (FarEnd.UNREACHABLE, self.unreachable_rate),
        ):
            if x < rate:
                return far_end
            x -= rate
        return FarEnd.NO_ANSWER
