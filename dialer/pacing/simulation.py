"""A discrete-event outbound call-center simulator for judging pacing controllers.

Pure: no clock, no I/O; all randomness comes from the `random.Random` passed in, so a seed fixes a run.

The model (`CallCenterConfig`): N agents; each dial is a live answer with probability `answer_rate`;
a live answer comes after a short ring (``min + Gamma(2, .)``, mean `answer_ring_mean_s`), the others
ring until the no-answer timeout; answered calls are bridged to the agent idle longest, or wait for one
up to the safe-harbour time (2 s) and are then **abandoned** (safe-harbour message, hang up); talk time
is lognormal (or exponential) with the given mean; after-call work (wrap-up) is uniform around its
mean. A pacer is asked every `tick_s` how many calls to place, seeing only what a real dialer sees:
agents ready / wrapping (with the *expected* time to free, from the estimates, not the true one) /
talking (with elapsed talk time), ringing calls with their ages, waiting calls, the rolling estimates
(refreshed every `estimate_every_s` from the outcomes so far) and the rolling abandon window.

`SimulationReport` gives per hour: talk minutes per agent-hour, abandon rate (abandons / live answers)
and calls placed; `fluid_bound_talk_minutes` is the ceiling no pacer can beat: an agent is never idle,
so each agent-hour holds ``60 * talk / (talk + wrap)`` talk minutes.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from dialer.pacing.adaptive_baseline import (
    AdaptiveObservation,
    AdaptiveSettings,
    adaptive_step,
    initial_state,
)
from dialer.pacing.controller import DialMode, PacingInput, PredictiveTuning, calls_to_place
from dialer.pacing.estimator import DialOutcome, Estimates, HandledCall, estimate


@dataclass(frozen=True)
class CallCenterConfig:
    agents: int = 20
    answer_rate: float = 0.20
    answer_ring_min_s: float = 2.0
    answer_ring_mean_s: float = 8.0
    no_answer_timeout_s: float = 25.0
    talk_mean_s: float = 180.0
    talk_distribution: str = "lognormal"  # or "exponential"
    talk_sigma: float = 0.8  # lognormal shape: median ~ 0.73 x mean, a realistic long right tail
    wrap_mean_s: float = 15.0
    wrap_spread_s: float = 5.0  # wrap-up is uniform in mean +- spread
    safe_harbour_s: float = 2.0
    hours: float = 8.0
    tick_s: float = 1.0
    estimate_every_s: float = 10.0
    history_window_s: float = 3600.0
    abandon_window_s: float = 3600.0

    def fluid_bound_talk_minutes(self) -> float:
        """Talk minutes per agent-hour if agents were never idle: only wrap-up keeps them off the phone."""
        return 60.0 * self.talk_mean_s / (self.talk_mean_s + self.wrap_mean_s)


@dataclass(frozen=True)
class Observation:
    """Everything a pacer may look at on one tick."""

    now: float
    agents_ready: int
    agents_logged_in: int
    soon_free: tuple[float, ...]  # expected seconds to ready, per agent in wrap-up
    on_call_elapsed: tuple[float, ...]  # seconds talked so far, per agent on a call
    ringing_ages: tuple[float, ...]
    waiting: int
    estimates: Estimates
    abandons_in_window: int
    answered_in_window: int
    dials_total: int
    answers_total: int
    abandons_total: int


Pacer = Callable[[Observation], int]


@dataclass
class HourStats:
    talk_s: float = 0.0
    placed: int = 0
    answered: int = 0
    abandoned: int = 0


@dataclass(frozen=True)
class SimulationReport:
    name: str
    agents: int
    hours: tuple[HourStats, ...]
    fluid_bound: float

    def talk_minutes_per_agent_hour(self) -> float:
        return sum(h.talk_s for h in self.hours) / 60.0 / (self.agents * len(self.hours))

    def hour_talk_minutes(self, hour: int) -> float:
        return self.hours[hour].talk_s / 60.0 / self.agents

    def abandon_rate(self) -> float:
        answered = sum(h.answered for h in self.hours)
        return sum(h.abandoned for h in self.hours) / answered if answered else 0.0

    def hour_abandon_rates(self) -> tuple[float, ...]:
        return tuple(h.abandoned / h.answered if h.answered else 0.0 for h in self.hours)

    def calls_placed(self) -> int:
        return sum(h.placed for h in self.hours)


class _Ev(IntEnum):
    # Same-instant order: agents free up and calls resolve before the pacer looks at the state.
    WRAP_END = 0
    TALK_END = 1
    ANSWER = 2
    NO_ANSWER = 3
    ABANDON = 4
    TICK = 5


@dataclass
class _Agent:
    state: str = "ready"  # ready | talk | wrap
    since: float = 0.0
    talk_s: float = 0.0


@dataclass
class _Sim:
    cfg: CallCenterConfig
    rng: random.Random
    pacer: Pacer
    now: float = 0.0
    seq: int = 0
    events: list[tuple[float, int, int, int]] = field(default_factory=list)
    agents: list[_Agent] = field(default_factory=list)
    ringing: dict[int, float] = field(default_factory=dict)  # call id -> placed at
    waiting: dict[int, tuple[float, float]] = field(default_factory=dict)  # id -> (placed, answered at)
    outcomes: deque[DialOutcome] = field(default_factory=deque)
    handled: deque[HandledCall] = field(default_factory=deque)
    answer_log: deque[tuple[float, bool]] = field(default_factory=deque)  # (answered at, abandoned)
    window_abandons: int = 0
    estimates: Estimates = field(default_factory=Estimates)
    next_estimate_at: float = 0.0
    next_call_id: int = 0
    dials: int = 0
    answers: int = 0
    abandons: int = 0
    hours: list[HourStats] = field(default_factory=list)

    def push(self, at: float, kind: _Ev, ref: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, int(kind), self.seq, ref))

    def hour(self, t: float) -> HourStats:
        return self.hours[min(len(self.hours) - 1, int(t // 3600))]

    def add_talk(self, start: float, end: float) -> None:
        while start < end:
            boundary = (math.floor(start / 3600) + 1) * 3600
            piece_end = min(end, boundary)
            self.hour(start).talk_s += piece_end - start
            start = piece_end

    def draw_talk(self) -> float:
        cfg = self.cfg
        if cfg.talk_distribution == "exponential":
            return self.rng.expovariate(1.0 / cfg.talk_mean_s)
        sigma = cfg.talk_sigma
        mu = math.log(cfg.talk_mean_s) - sigma * sigma / 2.0
        return self.rng.lognormvariate(mu, sigma)

    def bridge(self, agent_index: int) -> None:
        agent = self.agents[agent_index]
        agent.state, agent.since, agent.talk_s = "talk", self.now, self.draw_talk()
        self.push(self.now + agent.talk_s, _Ev.TALK_END, agent_index)

    def record_answer(self, abandoned: bool) -> None:
        self.answer_log.append((self.now, abandoned))
        self.window_abandons += abandoned
        self.answers += 1
        self.abandons += abandoned
        stats = self.hour(self.now)
        stats.answered += 1
        stats.abandoned += abandoned

    def free_agent(self, index: int) -> None:
        if self.waiting:
            call_id = next(iter(self.waiting))  # dicts keep insertion order: first answered first served
            placed, answered_at = self.waiting.pop(call_id)
            self.outcomes.append(DialOutcome(placed, answered_at - placed, True, False))
            self.record_answer(False)
            self.bridge(index)
        else:
            agent = self.agents[index]
            agent.state, agent.since = "ready", self.now

    def on_answer(self, call_id: int) -> None:
        placed = self.ringing.pop(call_id)
        ready = [i for i, a in enumerate(self.agents) if a.state == "ready"]
        if ready:
            longest_idle = min(ready, key=lambda i: self.agents[i].since)
            self.outcomes.append(DialOutcome(placed, self.now - placed, True, False))
            self.record_answer(False)
            self.bridge(longest_idle)
        else:
            self.waiting[call_id] = (placed, self.now)
            self.push(self.now + self.cfg.safe_harbour_s, _Ev.ABANDON, call_id)

    def on_abandon(self, call_id: int) -> None:
        entry = self.waiting.pop(call_id, None)
        if entry is None:
            return  # an agent took it in time; the answer was recorded then
        placed, answered_at = entry
        self.outcomes.append(DialOutcome(placed, answered_at - placed, True, True))
        self.record_answer(True)

    def place_calls(self, count: int) -> None:
        cfg = self.cfg
        for _ in range(count):
            call_id = self.next_call_id
            self.next_call_id += 1
            self.ringing[call_id] = self.now
            self.dials += 1
            self.hour(self.now).placed += 1
            if self.rng.random() < cfg.answer_rate:
                extra = max(0.0, cfg.answer_ring_mean_s - cfg.answer_ring_min_s)
                ring = cfg.answer_ring_min_s + self.rng.gammavariate(2.0, extra / 2.0)
                self.push(self.now + ring, _Ev.ANSWER, call_id)
            else:
                self.push(self.now + cfg.no_answer_timeout_s, _Ev.NO_ANSWER, call_id)

    def observe(self) -> Observation:
        cfg, now = self.cfg, self.now
        while self.answer_log and self.answer_log[0][0] <= now - cfg.abandon_window_s:
            self.window_abandons -= self.answer_log.popleft()[1]
        if now >= self.next_estimate_at:
            horizon = now - cfg.history_window_s
            while self.outcomes and self.outcomes[0].placed_at <= horizon:
                self.outcomes.popleft()
            while self.handled and self.handled[0].ended_at <= horizon:
                self.handled.popleft()
            self.estimates = estimate(now, self.outcomes, self.handled, window_s=cfg.history_window_s)
            self.next_estimate_at = now + cfg.estimate_every_s
        wrap = self.estimates.mean_wrap_s
        return Observation(
            now=now,
            agents_ready=sum(1 for a in self.agents if a.state == "ready"),
            agents_logged_in=len(self.agents),
            soon_free=tuple(max(0.0, wrap - (now - a.since)) for a in self.agents if a.state == "wrap"),
            on_call_elapsed=tuple(now - a.since for a in self.agents if a.state == "talk"),
            ringing_ages=tuple(now - placed for placed in self.ringing.values()),
            waiting=len(self.waiting),
            estimates=self.estimates,
            abandons_in_window=self.window_abandons,
            answered_in_window=len(self.answer_log),
            dials_total=self.dials,
            answers_total=self.answers,
            abandons_total=self.abandons,
        )

    def run(self) -> None:
        cfg = self.cfg
        end = cfg.hours * 3600.0
        self.hours = [HourStats() for _ in range(max(1, math.ceil(cfg.hours)))]
        self.agents = [_Agent() for _ in range(cfg.agents)]
        self.push(0.0, _Ev.TICK, 0)
        while self.events:
            at, kind, _, ref = heapq.heappop(self.events)
            if at >= end:
                break
            self.now = at
            if kind == _Ev.TICK:
                self.place_calls(max(0, self.pacer(self.observe())))
                self.push(at + cfg.tick_s, _Ev.TICK, 0)
            elif kind == _Ev.ANSWER:
                self.on_answer(ref)
            elif kind == _Ev.NO_ANSWER:
                placed = self.ringing.pop(ref)
                self.outcomes.append(DialOutcome(placed, at - placed, False))
            elif kind == _Ev.ABANDON:
                self.on_abandon(ref)
            elif kind == _Ev.TALK_END:
                agent = self.agents[ref]
                self.add_talk(agent.since, at)
                wrap = self.rng.uniform(
                    cfg.wrap_mean_s - cfg.wrap_spread_s, cfg.wrap_mean_s + cfg.wrap_spread_s
                )
                agent.state, agent.since = "wrap", at
                self.push(at + max(0.0, wrap), _Ev.WRAP_END, ref)
                self.handled.append(HandledCall(at + max(0.0, wrap), agent.talk_s, max(0.0, wrap)))
            else:  # WRAP_END
                self.free_agent(ref)
        for agent in self.agents:  # talk still going at the end counts up to the end
            if agent.state == "talk":
                self.add_talk(agent.since, end)


def simulate(name: str, cfg: CallCenterConfig, pacer: Pacer, rng: random.Random) -> SimulationReport:
    """Run one shift with `pacer` and report per-hour figures."""
    sim = _Sim(cfg=cfg, rng=rng, pacer=pacer)
    sim.run()
    return SimulationReport(name, cfg.agents, tuple(sim.hours), cfg.fluid_bound_talk_minutes())


def controller_pacer(
    mode: DialMode,
    *,
    abandon_target: float = 0.03,
    dial_ratio: float = 1.0,
    max_lines: int = 200,
    tuning: PredictiveTuning | None = None,
) -> Pacer:
    """A pacer that asks `calls_to_place` (progressive, ratio or predictive) every tick."""
    tune = tuning or PredictiveTuning()

    def pace(obs: Observation) -> int:
        inp = PacingInput(
            mode=mode,
            agents_ready=obs.agents_ready,
            agents_soon_free=obs.soon_free,
            agents_on_call=len(obs.on_call_elapsed),
            calls_in_flight=len(obs.ringing_ages),
            calls_waiting_for_agent=obs.waiting,
            dial_ratio=dial_ratio,
            max_lines=max_lines,
            abandon_target=abandon_target,
            estimates=obs.estimates,
            abandons_in_window=obs.abandons_in_window,
            answered_in_window=obs.answered_in_window,
            ringing_ages=obs.ringing_ages,
            on_call_elapsed=obs.on_call_elapsed,
            tuning=tune,
        )
        return calls_to_place(inp).calls

    return pace


def adaptive_pacer(settings: AdaptiveSettings | None = None) -> Pacer:
    """The VICIdial-style baseline; it keeps its own state (dial level, samples) between ticks."""
    conf = settings or AdaptiveSettings()
    state = initial_state(conf)

    def pace(obs: Observation) -> int:
        nonlocal state
        busy = len(obs.on_call_elapsed) + len(obs.soon_free)
        state, calls, _ = adaptive_step(
            conf,
            state,
            AdaptiveObservation(
                now=obs.now,
                ready=obs.agents_ready,
                busy=busy,
                logged_in=obs.agents_logged_in,
                ringing=len(obs.ringing_ages),
                waiting=obs.waiting,
                bridged=len(obs.on_call_elapsed),
                dials_total=obs.dials_total,
                answers_total=obs.answers_total,
                drops_total=obs.abandons_total,
            ),
        )
        return calls

    return pace
