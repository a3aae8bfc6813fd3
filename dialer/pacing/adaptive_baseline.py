"""A VICIdial-style adaptive dial-level controller: the baseline the predictive controller is judged by.

Modelled on VICIdial's own code and documentation, read for this purpose (not copied):

* ``docs/PREDICTIVE.txt`` (2006-08-29) describes the ADAPT dial methods and the campaign settings
  (drop percentage limit, maximum adapt dial level, latest server time, intensity, dial level
  difference target, available-only tally);
* ``bin/AST_VDadapt.pl`` (versions 2.0.1 and 2.4, ``calculate_dial_level``) holds the arithmetic;
* ``bin/AST_VDauto_dial.pl`` turns the dial level into calls: ``goal = round(level * agents)``, minus
  the campaign's calls already up (sent, ringing, waiting and bridged to agents).

What it does, per that code:

1. Once a second, sample READY agents, calls waiting for an agent and logged-in agents; keep 15.
2. Every 15 s: ``diff = avg(ready) - avg(waiting) + dl_diff_target``; ``mul = diff / avg(agents)``;
   intensity ``i`` (-40..40) scales it (``mul * (1 + i/100)`` up, ``mul * |i/100 - 1|`` down);
   ``level = level * (1 + mul)``, capped at the maximum adapt level and floored at 1.0.
3. Every 60 s refresh the drop statistics: today's drops as a share of today's answers, and the last
   minute's drops as a share of its calls.
4. Drop brakes on the new level: more than 20 calls in the last minute with over 50 % dropped halves
   it; with more than 50 calls today and today's drop % over the limit, ADAPT_HARD_LIMIT sets it to
   1.0, ADAPT_AVERAGE halves it and ADAPT_TAPERED multiplies it by ``hours_left / 10`` (1 with ten or
   more hours left, 1.0 flat once past the latest server time): lenient early in the shift, strict late.
5. The level never goes below 1.0.

Agents in after-call work count as INCALL (VICIdial shows them as DISPO, an INCALL agent whose call
has hung up), so with the default available-only tally ``N`` the goal is ``level * (ready + busy)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class AdaptMethod(StrEnum):
    HARD_LIMIT = "ADAPT_HARD_LIMIT"
    TAPERED = "ADAPT_TAPERED"
    AVERAGE = "ADAPT_AVERAGE"


@dataclass(frozen=True)
class AdaptiveSettings:
    """Campaign settings, named after VICIdial's, with its defaults except where noted."""

    method: AdaptMethod = AdaptMethod.HARD_LIMIT
    drop_limit: float = 0.03  # adaptive_dropped_percentage (3)
    max_level: float = 3.0  # adaptive_maximum_level (3.0)
    start_level: float = 1.0  # auto_dial_level when the shift starts
    intensity: int = 0  # adaptive_intensity
    dl_diff_target: float = 0.0  # adaptive_dl_diff_target
    available_only: bool = False  # available_only_ratio_tally (N)
    shift_end_s: float = 8 * 3600.0  # adaptive_latest_server_time, as seconds after the shift start
    level_every_s: float = 15.0
    drops_every_s: float = 60.0
    samples_kept: int = 15
    min_calls_today: int = 50


@dataclass(frozen=True)
class AdaptiveObservation:
    """What the dialer sees at one tick. Totals are cumulative since the shift start (VICIdial: today)."""

    now: float
    ready: int
    busy: int  # talking or in after-call work (VICIdial INCALL/QUEUE, incl. DISPO)
    logged_in: int
    ringing: int
    waiting: int  # answered, waiting for an agent (VICIdial LIVE)
    bridged: int  # calls connected to an agent (VICIdial XFER)
    dials_total: int
    answers_total: int
    drops_total: int


@dataclass(frozen=True)
class AdaptiveState:
    level: float
    samples: tuple[tuple[int, int, int], ...] = ()  # (ready, waiting, logged_in), newest last
    next_level_at: float = 0.0
    next_drops_at: float = 0.0
    # Drop statistics as of the last refresh, and the totals one refresh earlier (for "last minute").
    today_pct: float = 0.0
    today_calls: int = 0
    minute_calls: int = 0
    minute_pct: float = 0.0
    prev_dials: int = 0
    prev_drops: int = 0


def initial_state(settings: AdaptiveSettings, now: float = 0.0) -> AdaptiveState:
    return AdaptiveState(
        level=settings.start_level,
        next_level_at=now + settings.level_every_s,
        next_drops_at=now + settings.drops_every_s,
    )


def _refresh_drops(state: AdaptiveState, obs: AdaptiveObservation) -> AdaptiveState:
    minute_calls = obs.dials_total - state.prev_dials
    minute_drops = obs.drops_total - state.prev_drops
    return replace(
        state,
        today_pct=obs.drops_total / obs.answers_total if obs.answers_total else 0.0,
        today_calls=obs.dials_total,
        minute_calls=minute_calls,
        minute_pct=minute_drops / minute_calls if minute_calls else 0.0,
        prev_dials=obs.dials_total,
        prev_drops=obs.drops_total,
    )


def _new_level(settings: AdaptiveSettings, state: AdaptiveState, now: float) -> tuple[float, str]:
    count = len(state.samples)
    if count == 0:
        return state.level, "no samples"
    ready = sum(s[0] for s in state.samples) / count
    waiting = sum(s[1] for s in state.samples) / count
    agents = sum(s[2] for s in state.samples) / count
    diff = ready - waiting + settings.dl_diff_target
    mul = diff / agents if agents and diff else 0.0
    intensity = settings.intensity / 100.0
    mul = mul * abs(intensity - 1.0) if mul < 0 else mul * (intensity + 1.0)
    level = min(settings.max_level, max(1.0, state.level * (1.0 + mul)))
    note = f"diff {diff:+.2f}/{agents:.1f} agents"
    if state.minute_calls > 20 and state.minute_pct > 0.5:
        level /= 2.0
        note += "; >50% dropped last minute: halved"
    if state.today_calls > settings.min_calls_today and state.today_pct > settings.drop_limit:
        if settings.method is AdaptMethod.HARD_LIMIT:
            level = 1.0
        elif settings.method is AdaptMethod.AVERAGE:
            level /= 2.0
        else:
            hours_left = (settings.shift_end_s - now) / 3600.0
            level = 1.0 if hours_left < 0 else level * min(1.0, hours_left / 10.0)
        note += f"; today {state.today_pct:.1%} over limit ({settings.method.value})"
    return max(1.0, level), note


def adaptive_step(
    settings: AdaptiveSettings, state: AdaptiveState, obs: AdaptiveObservation
) -> tuple[AdaptiveState, int, str]:
    """One dialer tick: update the statistics and level when due; return (state, calls to place, note)."""
    samples = (*state.samples, (obs.ready, obs.waiting, obs.logged_in))[-settings.samples_kept :]
    state = replace(state, samples=samples)
    note = ""
    if obs.now >= state.next_drops_at:
        state = replace(_refresh_drops(state, obs), next_drops_at=obs.now + settings.drops_every_s)
    if obs.now >= state.next_level_at:
        level, note = _new_level(settings, state, obs.now)
        state = replace(state, level=level, next_level_at=obs.now + settings.level_every_s)
    agents = obs.ready if settings.available_only else obs.ready + obs.busy
    goal = round(state.level * agents)
    if settings.available_only:
        goal += obs.bridged  # AST_VDauto_dial adds the XFER calls back when tallying ready agents only
    existing = obs.ringing + obs.waiting + obs.bridged
    calls = max(0, goal - existing)
    return (
        state,
        calls,
        f"level {state.level:.2f}: goal {goal}, {existing} up" + (f"; {note}" if note else ""),
    )
