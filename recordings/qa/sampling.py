"""Which calls QA reviews: risk-based picks first, then a random audit, per agent and period (pure).

Deterministic for a given seed: the same calls, policy and seed always give the same sample, whatever
order the calls arrive in, so a scheduled sampling job can be re-run safely and a supervisor can
reproduce a sample. Each agent gets an independent random stream (seeded with the agent id), so adding
one agent's calls does not change another agent's sample.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

# Risk reasons, worst first; the weight orders risky calls when there are more than the quota.
RISK_WEIGHTS = {"dnc_disposition": 4, "abandoned": 3, "long_silence": 2, "short_call": 1}
RANDOM = "random"


@dataclass(frozen=True, slots=True)
class CallForSampling:
    """What sampling needs to know about one finished call."""

    call_id: int
    agent_id: int | None  # None for calls no agent took (most abandons)
    started_at: datetime
    talk_s: float
    disposition: str | None = None
    abandoned: bool = False
    longest_silence_s: float | None = None  # from RecordingMetrics; None when not recorded


@dataclass(frozen=True, slots=True)
class SamplingPolicy:
    """Quotas and thresholds; SEEDS.md §QA asks for random record audits, risk picks are ours."""

    random_per_agent: int = 2
    risk_per_agent: int = 3
    short_call_s: float = 20.0
    long_silence_s: float = 10.0
    dnc_dispositions: frozenset[str] = field(default_factory=lambda: frozenset({"dnc", "do_not_call"}))
    include_unassigned: bool = True  # sample calls without an agent (abandons) under agent None


@dataclass(frozen=True, slots=True)
class SampledCall:
    """A call chosen for review and why."""

    call_id: int
    agent_id: int | None
    reasons: tuple[str, ...]  # risk reasons worst first, or ("random",)


def risk_reasons(call: CallForSampling, policy: SamplingPolicy) -> tuple[str, ...]:
    """Risk reasons that apply to a call, worst first."""
    reasons = []
    if call.disposition is not None and call.disposition.lower() in policy.dnc_dispositions:
        reasons.append("dnc_disposition")
    if call.abandoned:
        reasons.append("abandoned")
    if call.longest_silence_s is not None and call.longest_silence_s > policy.long_silence_s:
        reasons.append("long_silence")
    # An abandoned call is short by nature; flagging it twice would only inflate its weight.
    if not call.abandoned and call.talk_s < policy.short_call_s:
        reasons.append("short_call")
    return tuple(reasons)


def select_for_review(
    calls: Iterable[CallForSampling],
    policy: SamplingPolicy,
    *,
    seed: int | str,
    period_start: datetime,
    period_end: datetime,
    already_reviewed: frozenset[int] = frozenset(),
) -> list[SampledCall]:
    """Pick calls in [period_start, period_end) per agent: risk quota first, then random quota."""
    by_agent: dict[int | None, list[CallForSampling]] = {}
    for call in calls:
        if not period_start <= call.started_at < period_end or call.call_id in already_reviewed:
            continue
        if call.agent_id is None and not policy.include_unassigned:
            continue
        by_agent.setdefault(call.agent_id, []).append(call)

    picked: list[SampledCall] = []
    for agent_id in sorted(by_agent, key=lambda a: (a is None, a or 0)):
        pool = sorted(by_agent[agent_id], key=lambda c: c.call_id)
        rng = random.Random(f"{seed}:{agent_id}")
        picked.extend(_sample_agent(pool, policy, rng))
    return picked


def _sample_agent(
    pool: Sequence[CallForSampling], policy: SamplingPolicy, rng: random.Random
) -> list[SampledCall]:
    risky = [(call, risk_reasons(call, policy)) for call in pool]
    risky = [(call, reasons) for call, reasons in risky if reasons]
    # Shuffle first so the stable sort by weight breaks ties at random (but reproducibly).
    rng.shuffle(risky)
    risky.sort(key=lambda item: -sum(RISK_WEIGHTS[r] for r in item[1]))
    chosen = [SampledCall(c.call_id, c.agent_id, reasons) for c, reasons in risky[: policy.risk_per_agent]]
    taken = {s.call_id for s in chosen}
    rest = [c for c in pool if c.call_id not in taken]
    for call in rng.sample(rest, min(policy.random_per_agent, len(rest))):
        chosen.append(SampledCall(call.call_id, call.agent_id, (RANDOM,)))
    return chosen
