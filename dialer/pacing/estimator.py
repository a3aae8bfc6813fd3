"""Rolling estimates of the call model, computed from recent history passed in as plain values.

Pure: no clock, no I/O. The caller keeps the history (the dial ledger and the CDRs) and says what time it
is (`now`); `estimate()` keeps what falls inside the window and summarises it into a frozen `Estimates`.

* **Answer probability** (live answers per dial) is the posterior of a Beta prior updated with the window's
  outcomes: ``p = (a + answered) / (a + b + dialled)``. A cold campaign therefore starts from the prior's
  mean instead of 0/0, and `answer_probability_upper` (mean + z·sd of the posterior) lets the controller
  be cautious while the sample is small: the posterior sd shrinks as ``1/sqrt(n)``.
* **Ring time to answer** of answered calls: mean, a high percentile, and the sorted sample itself, which
  gives the conditional answer probability of a call that has already rung for `t` seconds
  (`answer_probability_after`): calls that will answer do so within seconds, so a call ringing for 15 s is
  very likely heading for the no-answer timeout and must not be counted as a future live call.
* **Handle time** (talk + wrap) of finished calls: mean and percentiles, plus the talk sample for the
  chance that an agent on a call frees up within a horizon (`free_probability`).
* **Abandon rate** over the window: ``abandons / live-answered`` (an abandon is a live answer that found
  no agent within the safe-harbour time; it counts in both numerator and denominator).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Used while there is no history: ring-to-answer of a live call and a typical handle time. They only
# matter for the first minutes of a campaign; the prior on the answer rate matters more (below).
DEFAULT_RING_TO_ANSWER_S = 8.0
DEFAULT_NO_ANSWER_TIMEOUT_S = 25.0
DEFAULT_TALK_S = 180.0
DEFAULT_WRAP_S = 15.0
MAX_SAMPLES = 400  # sorted samples kept per distribution: enough for percentiles, cheap to bisect


@dataclass(frozen=True)
class DialOutcome:
    """One finished dial attempt.

    `ring_s` is from Originate to answer (answered) or to giving up (no answer, busy, timeout).
    `abandoned` marks a live answer dropped because no agent was free within the safe-harbour time.
    """

    placed_at: float
    ring_s: float
    answered: bool
    abandoned: bool = False


@dataclass(frozen=True)
class HandledCall:
    """One call an agent finished: talk seconds and after-call wrap-up seconds, ended at `ended_at`."""

    ended_at: float
    talk_s: float
    wrap_s: float


@dataclass(frozen=True)
class BetaPrior:
    """Beta(alpha, beta) prior on the live-answer probability; alpha + beta is its weight in dials.

    The default (mean 0.3, worth 10 dials) is deliberately on the high side of typical B2C answer rates:
    over-estimating p makes a cold predictive campaign dial *fewer* lines, i.e. err towards idle agents
    rather than abandoned customers. Ten dials is light enough to be forgotten within a minute.
    """

    alpha: float = 3.0
    beta: float = 7.0


@dataclass(frozen=True)
class Estimates:
    """A summary of the recent call model; every field has a sane cold-start value."""

    answer_probability: float = 0.3
    answer_probability_upper: float = 0.3
    dials: int = 0
    answered: int = 0
    abandoned: int = 0
    mean_ring_to_answer_s: float = DEFAULT_RING_TO_ANSWER_S
    p90_ring_to_answer_s: float = DEFAULT_RING_TO_ANSWER_S * 1.5
    no_answer_timeout_s: float = DEFAULT_NO_ANSWER_TIMEOUT_S
    mean_talk_s: float = DEFAULT_TALK_S
    mean_wrap_s: float = DEFAULT_WRAP_S
    mean_handle_s: float = DEFAULT_TALK_S + DEFAULT_WRAP_S
    p50_handle_s: float = DEFAULT_TALK_S + DEFAULT_WRAP_S
    p90_handle_s: float = 2.3 * (DEFAULT_TALK_S + DEFAULT_WRAP_S)
    abandon_rate: float = 0.0
    # Sorted samples (most recent MAX_SAMPLES): ring-to-answer of answered calls, ring time of unanswered
    # calls, talk time of handled calls. Empty means "use the defaults above".
    answer_ring_samples: tuple[float, ...] = ()
    no_answer_ring_samples: tuple[float, ...] = ()
    talk_samples: tuple[float, ...] = ()

    def answer_probability_after(self, rung_s: float, p: float | None = None) -> float:
        """P(a call answers live | it has rung `rung_s` seconds without an answer).

        Bayes: ``p·Sa(t) / (p·Sa(t) + (1-p)·Su(t))`` with Sa, Su the survival functions of the ring time
        of answered and unanswered calls. Without samples Sa is an exponential with the mean ring time
        and Su is 1 until the timeout.
        """
        prob = self.answer_probability if p is None else p
        if rung_s <= 0.0:
            return prob
        s_answer = _survival(self.answer_ring_samples, rung_s, self.mean_ring_to_answer_s, exponential=True)
        s_none = _survival(self.no_answer_ring_samples, rung_s, self.no_answer_timeout_s, exponential=False)
        num = prob * s_answer
        den = num + (1.0 - prob) * s_none
        return num / den if den > 0.0 else 0.0

    def answer_within(self, rung_s: float, horizon_s: float) -> float:
        """P(a call that has rung `rung_s` s answers within the next `horizon_s` s | it will answer)."""
        samples = self.answer_ring_samples
        if not samples:
            mean = self.mean_ring_to_answer_s
            return 1.0 - math.exp(-horizon_s / mean) if mean > 0 else 1.0
        alive = len(samples) - bisect_right(samples, rung_s)
        if alive == 0:
            return 1.0
        done = bisect_right(samples, rung_s + horizon_s) - bisect_right(samples, rung_s)
        return done / alive

    def free_probability(self, talk_elapsed_s: float, horizon_s: float) -> float:
        """P(an agent `talk_elapsed_s` into a call is free again within `horizon_s`).

        The agent must finish talking *and* wrap up, so only ``horizon - mean_wrap`` seconds of talk can
        end in time: ``(St(e) - St(e + h - wrap)) / St(e)`` from the talk sample (exponential without one).
        """
        talk_budget = horizon_s - self.mean_wrap_s
        if talk_budget <= 0.0:
            return 0.0
        samples = self.talk_samples
        if not samples:
            return 1.0 - math.exp(-talk_budget / self.mean_talk_s) if self.mean_talk_s > 0 else 1.0
        alive = len(samples) - bisect_right(samples, talk_elapsed_s)
        if alive == 0:
            # Longer than anything seen: fall back to the memoryless guess rather than "certain".
            return 1.0 - math.exp(-talk_budget / self.mean_talk_s)
        ended = bisect_right(samples, talk_elapsed_s + talk_budget) - bisect_right(samples, talk_elapsed_s)
        return ended / alive


def _survival(samples: Sequence[float], t: float, default: float, *, exponential: bool) -> float:
    if not samples:
        if exponential:
            return math.exp(-t / default) if default > 0 else 0.0
        return 1.0 if t < default else 0.0
    return (len(samples) - bisect_right(samples, t)) / len(samples)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty sequence."""
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def _recent_sorted(values: list[float]) -> tuple[float, ...]:
    return tuple(sorted(values[-MAX_SAMPLES:]))


def estimate(
    now: float,
    outcomes: Iterable[DialOutcome],
    handled: Iterable[HandledCall] = (),
    *,
    window_s: float = 3600.0,
    prior: BetaPrior | None = None,
    z: float = 1.0,
) -> Estimates:
    """Summarise the outcomes and handled calls of the last `window_s` seconds before `now`.

    Inputs are expected in time order (oldest first) so "most recent samples" is well defined; entries
    outside ``(now - window_s, now]`` are ignored. `z` sets how many posterior standard deviations
    `answer_probability_upper` adds to the mean.
    """
    prior = prior or BetaPrior()
    since = now - window_s
    dials = answered = abandoned = 0
    answer_rings: list[float] = []
    none_rings: list[float] = []
    for o in outcomes:
        if not since < o.placed_at <= now:
            continue
        dials += 1
        if o.answered:
            answered += 1
            abandoned += o.abandoned
            answer_rings.append(o.ring_s)
        else:
            none_rings.append(o.ring_s)
    talks: list[float] = []
    handles: list[float] = []
    wraps: list[float] = []
    for h in handled:
        if not since < h.ended_at <= now:
            continue
        talks.append(h.talk_s)
        wraps.append(h.wrap_s)
        handles.append(h.talk_s + h.wrap_s)

    a = prior.alpha + answered
    b = prior.beta + (dials - answered)
    mean_p = a / (a + b)
    sd_p = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))
    base = Estimates()
    ring_sorted = _recent_sorted(answer_rings)
    none_sorted = _recent_sorted(none_rings)
    talk_sorted = _recent_sorted(talks)
    handle_sorted = sorted(handles[-MAX_SAMPLES:])
    recent_wraps = wraps[-MAX_SAMPLES:]
    return Estimates(
        answer_probability=mean_p,
        answer_probability_upper=min(1.0, mean_p + z * sd_p),
        dials=dials,
        answered=answered,
        abandoned=abandoned,
        abandon_rate=abandoned / answered if answered else 0.0,
        mean_ring_to_answer_s=_mean(ring_sorted, base.mean_ring_to_answer_s),
        p90_ring_to_answer_s=_percentile(ring_sorted, 0.9) if ring_sorted else base.p90_ring_to_answer_s,
        no_answer_timeout_s=none_sorted[-1] if none_sorted else base.no_answer_timeout_s,
        mean_talk_s=_mean(talk_sorted, base.mean_talk_s),
        mean_wrap_s=_mean(recent_wraps, base.mean_wrap_s),
        mean_handle_s=_mean(handle_sorted, base.mean_handle_s),
        p50_handle_s=_percentile(handle_sorted, 0.5) if handle_sorted else base.p50_handle_s,
        p90_handle_s=_percentile(handle_sorted, 0.9) if handle_sorted else base.p90_handle_s,
        answer_ring_samples=ring_sorted,
        no_answer_ring_samples=none_sorted,
        talk_samples=talk_sorted,
    )


def _mean(values: Sequence[float], default: float) -> float:
    return sum(values) / len(values) if values else default
