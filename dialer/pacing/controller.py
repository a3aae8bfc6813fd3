"""The pacing controller: how many calls to place *now*. Pure: a snapshot in, a decision out.

Modes:

* ``preview``: 0. The agent reads the lead and clicks to dial.
* ``progressive``: one line per ready agent not already covered: ``ready - in_flight - waiting``.
  It can never abandon: even if every pending call answers, each finds a ready agent.
* ``ratio``: a fixed multiplier, ``floor(dial_ratio * ready) - in_flight - waiting``.
* ``predictive``: the probabilistic model below, with a feedback brake on the measured abandon rate.

**The predictive model** (a transient queue over the next ``horizon_s`` seconds, in slots as long as
the safe harbour, 2 s, since an answered call may wait that long for an agent):

* *answers*: a ringing call that has rung ``a`` s answers live with ``q(a) = p Sa(a) / (p Sa(a) +
  (1-p) Su(a))`` (Bayes on the ring-time distributions of answered and unanswered calls: after 15 s of
  ringing it is almost surely heading for the no-answer timeout), and then in slot ``k`` with the
  conditional ring-time distribution; a new call does the same from ``a = 0``. ``p`` is the answer
  probability's posterior mean + 1 sd, cautious while the sample is small. Per slot the answers
  (a sum of many small Bernoullis) are taken as Poisson with the summed mean ``lambda_k(n)``, which
  grows linearly with the number ``n`` of new calls.
* *agents*: ready now; in wrap-up, freeing at the expected time (moved ``free_lead_s`` earlier, because
  an answer may wait for an agent that frees just after its slot); on a call, freeing in slot ``k``
  with the probability that talk + wrap ends there given the talk so far (Poisson per slot).
* The distribution of idle agents is carried slot by slot: add the slot's frees, take its answers;
  answers beyond the idle agents are abandoned, so ``A(n) = sum_k E[(answers_k - idle_k)^+]``.

``A(n)`` is convex and increasing in ``n``. Each tick charges its new calls their *marginal* expected
abandons and takes the largest ``n`` with ``A(n) - A(0) <= target * n * e`` (``e`` = expected live
answers per new call within the horizon), found by doubling then bisection. Charging each call once,
at the tick that placed it, keeps the long-run ratio ``abandons / answers`` at or under the target
when the model is right. Predictive never places fewer calls than progressive (which is abandon-free).

**Safety and feedback.** The slotted model is approximate both ways (slot-level timing, Poisson
answers, expected wrap-up ends), so the measured abandon rate over the rolling window closes the loop:
the effective target is ``abandon_target * safety``; from ``relax`` x target it shrinks linearly to 0
at ``brake`` x target, and at or above that we dial progressive until the window recovers.
``max_lines`` caps ringing + waiting + new calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from dialer.pacing.estimator import Estimates

TRIM = 1e-12  # probability mass below this is dropped from distribution tails


class DialMode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    RATIO = "ratio"
    PREDICTIVE = "predictive"


@dataclass(frozen=True)
class PredictiveTuning:
    """Knobs of the predictive mode; the defaults are what bench/pacing.py reports."""

    safety: float = 1.0  # effective target = abandon_target * safety (before feedback)
    relax: float = 0.5  # window rate <= relax * target: no feedback reduction
    brake: float = 0.9  # window rate >= brake * target: fall back to progressive
    safe_harbour_s: float = 2.0  # how long an answered call may wait for an agent; also the slot length
    horizon_s: float = 20.0  # look-ahead; live answers come within ~20 s of dialling
    free_lead_s: float = 1.0  # count a wrap-up ending this much after a slot as free in that slot
    min_window_answers: int = 30  # fewer live answers in the window: too noisy to brake on
    use_upper_answer_probability: bool = True  # cautious p while the sample is small


@dataclass(frozen=True)
class PacingInput:
    """A snapshot of one campaign at one tick.

    `agents_soon_free` holds, per agent in wrap-up, the expected seconds until it is ready.
    `ringing_ages` (seconds each ringing call has rung) and `on_call_elapsed` (seconds each on-call agent
    has talked) refine the predictive model; without them every ringing call counts with the
    unconditional answer probability and every on-call agent as just connected.
    `max_lines` caps calls ringing + waiting for an agent + the new ones.
    """

    mode: DialMode
    agents_ready: int
    agents_soon_free: tuple[float, ...] = ()
    agents_on_call: int = 0
    calls_in_flight: int = 0
    calls_waiting_for_agent: int = 0
    dial_ratio: float = 1.0
    max_lines: int = 200
    abandon_target: float = 0.03
    estimates: Estimates = field(default_factory=Estimates)
    abandons_in_window: int = 0
    answered_in_window: int = 0
    ringing_ages: tuple[float, ...] | None = None
    on_call_elapsed: tuple[float, ...] | None = None
    tuning: PredictiveTuning = field(default_factory=PredictiveTuning)


@dataclass(frozen=True)
class PacingDecision:
    calls: int
    reason: str


def calls_to_place(inp: PacingInput) -> PacingDecision:
    """How many new calls to originate now, and why (the reason is logged with every tick)."""
    room = max(0, inp.max_lines - max(0, inp.calls_in_flight) - max(0, inp.calls_waiting_for_agent))
    if inp.mode is DialMode.PREVIEW:
        return PacingDecision(0, "preview: the agent dials")
    progressive = _progressive(inp)
    if inp.mode is DialMode.PROGRESSIVE:
        return _capped(progressive, room, f"progressive: {inp.agents_ready} ready, {_pending(inp)} pending")
    if inp.mode is DialMode.RATIO:
        goal = math.floor(max(0.0, inp.dial_ratio) * max(0, inp.agents_ready))
        wanted = max(0, goal - _pending(inp))
        return _capped(wanted, room, f"ratio {inp.dial_ratio:g}: goal {goal}, {_pending(inp)} pending")
    return _predictive(inp, progressive, room)


def _pending(inp: PacingInput) -> int:
    return max(0, inp.calls_in_flight) + max(0, inp.calls_waiting_for_agent)


def _progressive(inp: PacingInput) -> int:
    return max(0, max(0, inp.agents_ready) - _pending(inp))


def _capped(wanted: int, room: int, reason: str) -> PacingDecision:
    if wanted > room:
        return PacingDecision(room, f"{reason}; capped by max_lines to {room}")
    return PacingDecision(wanted, reason)


def effective_target(inp: PacingInput) -> tuple[float, float | None]:
    """(effective cohort abandon target, measured window rate or None if too few answers to tell)."""
    t = inp.tuning
    target = max(0.0, inp.abandon_target) * t.safety
    if inp.answered_in_window < t.min_window_answers:
        return target, None
    measured = inp.abandons_in_window / inp.answered_in_window
    relax, brake = t.relax * inp.abandon_target, t.brake * inp.abandon_target
    if measured <= relax:
        return target, measured
    if measured >= brake or brake <= relax:
        return 0.0, measured
    return target * (brake - measured) / (brake - relax), measured


def _predictive(inp: PacingInput, progressive: int, room: int) -> PacingDecision:
    target, measured = effective_target(inp)
    if measured is not None and target <= 0.0:
        return _capped(
            progressive, room, f"brake: window abandon {measured:.1%} near target; dialling progressive"
        )
    est, tune = inp.estimates, inp.tuning
    p = est.answer_probability_upper if tune.use_upper_answer_probability else est.answer_probability
    if p <= 0.0 or room <= 0:
        return _capped(progressive, room, "predictive: nothing to add; progressive")
    slot, slots = tune.safe_harbour_s, max(1, math.ceil(tune.horizon_s / tune.safe_harbour_s))
    table = _answer_table(est, p, slot, slots)

    ages = inp.ringing_ages if inp.ringing_ages is not None else (0.0,) * max(0, inp.calls_in_flight)
    lams = [0.0] * slots
    for age in ages:
        row = table[min(len(table) - 1, max(0, int(age)))]
        for k in range(slots):
            lams[k] += row[k]
    new_call = table[0]
    per_call = sum(new_call)

    frees = [0] * slots
    for t in inp.agents_soon_free:
        # Slots are (k*slot, (k+1)*slot]; an answer may wait up to the safe harbour, so an agent
        # freeing a little after the slot can still take it: shift frees earlier by `free_lead_s`.
        k = max(0, math.ceil((t - tune.free_lead_s) / slot) - 1)
        if k < slots:
            frees[k] += 1
    free_means = [0.0] * slots
    elapsed = inp.on_call_elapsed if inp.on_call_elapsed is not None else (0.0,) * max(0, inp.agents_on_call)
    for e in elapsed:
        before = 0.0
        for k in range(slots):
            upto = est.free_probability(e, (k + 1) * slot)
            free_means[k] += upto - before
            before = upto
    ready, waiting = max(0, inp.agents_ready), max(0, inp.calls_waiting_for_agent)

    def abandons(n: int) -> float:
        return _expected_abandons(
            ready, waiting, frees, free_means, [lam + n * nc for lam, nc in zip(lams, new_call, strict=True)]
        )

    base = abandons(0)

    def ok(n: int) -> bool:
        ab = abandons(n)
        return ab - base <= target * n * per_call

    n = 0
    if ok(1):
        hi = 2
        while hi <= room and ok(hi):
            hi *= 2
        lo = hi // 2  # ok(lo) holds
        hi = min(hi, room + 1)  # not ok(hi) or beyond room
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                lo = mid
            else:
                hi = mid
        n = min(lo, room)
    feedback = "" if measured is None else f", window {measured:.1%}"
    reason = f"predictive: {n} calls within target {target:.1%} (p={p:.2f}{feedback})"
    if progressive > n:
        n, reason = progressive, f"{reason}; raised to progressive {progressive}"
    return _capped(n, room, reason)


@lru_cache(maxsize=16)
def _answer_table(est: Estimates, p: float, slot: float, slots: int) -> tuple[tuple[float, ...], ...]:
    """Row a: expected live answers in each slot from a call that has rung `a` whole seconds."""
    rows = []
    for age in range(int(est.no_answer_timeout_s) + 2):
        q = est.answer_probability_after(float(age), p)
        row = []
        before = 0.0
        for k in range(slots):
            upto = est.answer_within(float(age), (k + 1) * slot)
            row.append(q * (upto - before))
            before = upto
        rows.append(tuple(row))
    return tuple(rows)


def _poisson(lam: float) -> list[float]:
    term = math.exp(-lam)
    out = [term]
    a = 0
    total = term
    while 1.0 - total > TRIM and a < 200:
        a += 1
        term *= lam / a
        out.append(term)
        total += term
    return out


def _expected_abandons(
    ready: int, waiting: int, frees: list[int], free_means: list[float], lams: list[float]
) -> float:
    """Expected abandons over the horizon: idle agents vs answers slot by slot.

    State: the distribution of idle agents. Each slot adds the agents freeing in it (known wrap-ups,
    Poisson for agents on a call), then takes the slot's answers (Poisson); answers beyond the idle
    agents are abandoned (a slot is the safe-harbour time, so an answer may use an agent freed in the
    same slot but not later).
    """
    dist, lo = [1.0], ready
    abandoned = 0.0
    for k, lam in enumerate(lams):
        lo += frees[k]
        if free_means[k] > 1e-9:
            pf = _poisson(free_means[k])
            grown = [0.0] * (len(dist) + len(pf) - 1)
            for i, m in enumerate(dist):
                for j, r in enumerate(pf):
                    grown[i + j] += m * r
            dist = grown
        arrivals = _poisson(lam)
        if k == 0 and waiting:
            arrivals = [0.0] * waiting + arrivals
        new = [0.0] * (lo + len(dist))
        for i, m in enumerate(dist):
            if m < TRIM:
                continue
            s = lo + i
            for a, r in enumerate(arrivals):
                if a <= s:
                    new[s - a] += m * r
                else:
                    new[0] += m * r
                    abandoned += m * r * (a - s)
        first = 0
        while first < len(new) - 1 and new[first] < TRIM:
            first += 1
        last = len(new)
        while last - 1 > first and new[last - 1] < TRIM:
            last -= 1
        dist, lo = new[first:last], first
    return abandoned
