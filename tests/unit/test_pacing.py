"""dialer.pacing: estimator, calls_to_place in every mode, the adaptive baseline, invariants."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.pacing.adaptive_baseline import (
    AdaptiveObservation,
    AdaptiveSettings,
    AdaptMethod,
    adaptive_step,
    initial_state,
)
from dialer.pacing.controller import DialMode, PacingInput, calls_to_place, effective_target
from dialer.pacing.estimator import BetaPrior, DialOutcome, Estimates, HandledCall, estimate

# A warm campaign: 20 % answer rate, answers after 4-12 s, no answer rings 25 s, 3 min talk, 15 s wrap.
WARM = estimate(
    1000.0,
    [DialOutcome(float(i), 4.0 + (i % 9), True) for i in range(0, 1000, 5)]
    + [DialOutcome(float(i) + 0.5, 25.0, False) for i in range(800)],
    [HandledCall(float(i), 120.0 + (i % 120), 15.0) for i in range(200, 1000, 4)],
)
COLD = Estimates()


def inp(mode: DialMode, ready: int, **kw: object) -> PacingInput:
    base = PacingInput(mode=mode, agents_ready=ready, estimates=WARM)
    return replace(base, **kw)  # type: ignore[arg-type]


# --- estimator -----------------------------------------------------------------------------------


def test_cold_start_uses_the_prior() -> None:
    est = estimate(0.0, [], [])
    assert est.answer_probability == pytest.approx(0.3)
    assert est.answer_probability_upper > est.answer_probability
    assert est.dials == 0 and est.abandon_rate == 0.0
    assert est.mean_talk_s == 180.0


def test_beta_posterior_and_window() -> None:
    outcomes = [DialOutcome(t, 5.0, t % 2 == 0) for t in range(1, 101)]  # 50 of 100 answered
    est = estimate(100.0, outcomes, [], prior=BetaPrior(1.0, 1.0))
    assert est.answer_probability == pytest.approx(51 / 102)
    assert est.dials == 100
    recent = estimate(100.0, outcomes, [], window_s=10.0, prior=BetaPrior(1.0, 1.0))
    assert recent.dials == 10  # only (90, 100]


def test_upper_bound_shrinks_with_data() -> None:
    few = estimate(10.0, [DialOutcome(1.0, 5.0, True)], [])
    gaps = [few.answer_probability_upper - few.answer_probability]
    gaps.append(WARM.answer_probability_upper - WARM.answer_probability)
    assert gaps[1] < gaps[0]


def test_abandon_rate_is_abandons_over_live_answers() -> None:
    outcomes = [DialOutcome(float(t), 5.0, True, abandoned=t < 3) for t in range(1, 101)]
    outcomes += [DialOutcome(float(t), 25.0, False) for t in range(1, 101)]
    est = estimate(200.0, outcomes, [])
    assert est.abandon_rate == pytest.approx(2 / 100)


def test_ring_and_handle_statistics() -> None:
    assert 4.0 <= WARM.mean_ring_to_answer_s <= 12.0
    assert WARM.p90_ring_to_answer_s >= WARM.mean_ring_to_answer_s
    assert WARM.mean_handle_s == pytest.approx(WARM.mean_talk_s + 15.0)
    assert WARM.p50_handle_s <= WARM.p90_handle_s


def test_conditional_answer_probability_falls_as_a_call_keeps_ringing() -> None:
    p0 = WARM.answer_probability_after(0.0)
    assert p0 == pytest.approx(WARM.answer_probability)
    assert WARM.answer_probability_after(6.0) < p0
    assert WARM.answer_probability_after(15.0) == 0.0  # every answer in the sample came by 12 s
    assert 0.0 < COLD.answer_probability_after(10.0) < COLD.answer_probability


def test_free_probability_needs_time_to_wrap() -> None:
    assert WARM.free_probability(100.0, 10.0) == 0.0  # 15 s wrap cannot end within 10 s
    assert 0.0 < WARM.free_probability(200.0, 60.0) <= 1.0


# --- calls_to_place, table-driven ------------------------------------------------------------------

CASES = [
    # (id, input, expected calls)
    ("preview", inp(DialMode.PREVIEW, 5), 0),
    ("progressive", inp(DialMode.PROGRESSIVE, 5, calls_in_flight=2), 3),
    ("progressive waiting", inp(DialMode.PROGRESSIVE, 5, calls_in_flight=2, calls_waiting_for_agent=1), 2),
    ("progressive covered", inp(DialMode.PROGRESSIVE, 2, calls_in_flight=4), 0),
    ("progressive no agents", inp(DialMode.PROGRESSIVE, 0), 0),
    ("ratio", inp(DialMode.RATIO, 3, dial_ratio=2.5, calls_in_flight=1), 6),  # floor(7.5) - 1
    ("ratio covered", inp(DialMode.RATIO, 1, dial_ratio=2.0, calls_in_flight=5), 0),
    ("ratio capped", inp(DialMode.RATIO, 10, dial_ratio=3.0, max_lines=12, calls_in_flight=2), 10),
    ("predictive no agents", inp(DialMode.PREDICTIVE, 0), 0),
    ("predictive capped", inp(DialMode.PREDICTIVE, 20, max_lines=7), 7),
    ("predictive no room", inp(DialMode.PREDICTIVE, 5, max_lines=3, calls_in_flight=3), 0),
    ("predictive brake", inp(DialMode.PREDICTIVE, 4, abandons_in_window=3, answered_in_window=100), 4),
    (
        "brake counts in-flight",
        inp(DialMode.PREDICTIVE, 4, calls_in_flight=3, abandons_in_window=30, answered_in_window=1000),
        1,
    ),
]


@pytest.mark.parametrize(("case", "given_input", "expected"), CASES, ids=[c[0] for c in CASES])
def test_calls_to_place(case: str, given_input: PacingInput, expected: int) -> None:
    assert calls_to_place(given_input).calls == expected, case


def test_predictive_dials_ahead_of_ready_agents() -> None:
    decision = calls_to_place(inp(DialMode.PREDICTIVE, 3))
    assert decision.calls > 3  # more lines than agents: most calls will not answer
    assert decision.reason.startswith("predictive")


def test_predictive_dials_for_agents_about_to_free() -> None:
    none_soon = calls_to_place(inp(DialMode.PREDICTIVE, 0, agents_on_call=19, agents_soon_free=(60.0,)))
    soon = calls_to_place(inp(DialMode.PREDICTIVE, 0, agents_on_call=19, agents_soon_free=(5.0, 6.0)))
    assert none_soon.calls == 0
    assert soon.calls > 0


def test_predictive_counts_young_ringing_calls_more_than_old_ones() -> None:
    young = calls_to_place(inp(DialMode.PREDICTIVE, 2, calls_in_flight=6, ringing_ages=(1.0,) * 6))
    old = calls_to_place(inp(DialMode.PREDICTIVE, 2, calls_in_flight=6, ringing_ages=(20.0,) * 6))
    assert old.calls > young.calls


def test_brake_at_target_falls_back_to_progressive() -> None:
    at_target = inp(DialMode.PREDICTIVE, 4, abandons_in_window=30, answered_in_window=1000)
    decision = calls_to_place(at_target)
    assert decision.calls == 4
    assert decision.reason.startswith("brake")
    target, measured = effective_target(at_target)
    assert target == 0.0 and measured == pytest.approx(0.03)


def test_feedback_shrinks_the_target_before_braking() -> None:
    calm = effective_target(inp(DialMode.PREDICTIVE, 4, abandons_in_window=0, answered_in_window=1000))
    warm = effective_target(inp(DialMode.PREDICTIVE, 4, abandons_in_window=22, answered_in_window=1000))
    assert 0.0 < warm[0] < calm[0]
    too_few = effective_target(inp(DialMode.PREDICTIVE, 4, abandons_in_window=5, answered_in_window=10))
    assert too_few[1] is None  # ten answers say nothing yet


def test_cold_start_is_more_careful_than_warm() -> None:
    cold = calls_to_place(inp(DialMode.PREDICTIVE, 4, estimates=COLD))
    warm = calls_to_place(inp(DialMode.PREDICTIVE, 4))
    assert 4 <= cold.calls <= warm.calls


# --- properties ------------------------------------------------------------------------------------

inputs = st.builds(
    PacingInput,
    mode=st.sampled_from(list(DialMode)),
    agents_ready=st.integers(-2, 40),
    agents_soon_free=st.lists(st.floats(0, 120), max_size=10).map(tuple),
    agents_on_call=st.integers(0, 40),
    calls_in_flight=st.integers(-1, 80),
    calls_waiting_for_agent=st.integers(-1, 5),
    dial_ratio=st.floats(0, 6),
    max_lines=st.integers(0, 120),
    abandon_target=st.floats(0, 0.1),
    estimates=st.sampled_from([COLD, WARM]),
    abandons_in_window=st.integers(0, 50),
    answered_in_window=st.integers(0, 2000),
)


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_never_negative_never_above_max_lines(given_input: PacingInput) -> None:
    calls = calls_to_place(given_input).calls
    assert 0 <= calls <= max(0, given_input.max_lines)
    pending = max(0, given_input.calls_in_flight) + max(0, given_input.calls_waiting_for_agent)
    assert calls + pending <= max(given_input.max_lines, pending)


@settings(max_examples=200, deadline=None)
@given(inputs)
def test_progressive_never_exceeds_ready_agents(given_input: PacingInput) -> None:
    calls = calls_to_place(replace(given_input, mode=DialMode.PROGRESSIVE)).calls
    assert calls <= max(0, given_input.agents_ready)


# --- adaptive baseline -----------------------------------------------------------------------------


def obs(now: float, ready: int, waiting: int = 0, **kw: int) -> AdaptiveObservation:
    fields = {
        "busy": 20 - ready,
        "logged_in": 20,
        "ringing": 0,
        "bridged": 20 - ready,
        "dials_total": 0,
        "answers_total": 0,
        "drops_total": 0,
    }
    fields.update(kw)
    return AdaptiveObservation(now=now, ready=ready, waiting=waiting, **fields)


def run_ticks(s: AdaptiveSettings, seconds: int, **kw: int) -> float:
    state = initial_state(s)
    for t in range(1, seconds + 1):
        state, _, _ = adaptive_step(s, state, obs(float(t), **kw))
    return state.level


def test_adaptive_level_rises_with_idle_agents_and_caps() -> None:
    s = AdaptiveSettings()
    assert run_ticks(s, 15, ready=4) == pytest.approx(1.2)  # 1.0 * (1 + 4/20)
    assert run_ticks(s, 600, ready=4) == s.max_level


def test_adaptive_level_never_below_one() -> None:
    assert run_ticks(AdaptiveSettings(start_level=1.5), 60, ready=0, waiting=5) == 1.0


def test_adaptive_hard_limit_drops_to_one_over_the_drop_limit() -> None:
    s = AdaptiveSettings(start_level=2.5)
    dropping = {"dials_total": 500, "answers_total": 100, "drops_total": 5}  # 5 % of answers
    assert run_ticks(s, 60, ready=2, **dropping) == 1.0
    assert run_ticks(s, 60, ready=2, dials_total=500, answers_total=100, drops_total=2) > 2.5


def test_adaptive_tapered_is_lenient_early_and_strict_late() -> None:
    dropping = {"dials_total": 500, "answers_total": 100, "drops_total": 5}
    early = AdaptiveSettings(method=AdaptMethod.TAPERED, start_level=2.5, shift_end_s=20 * 3600)
    late = AdaptiveSettings(method=AdaptMethod.TAPERED, start_level=2.5, shift_end_s=120)
    assert run_ticks(early, 60, ready=0, **dropping) == pytest.approx(2.5)  # 10+ h left: no taper
    assert run_ticks(late, 60, ready=0, **dropping) == 1.0


def test_adaptive_goal_counts_busy_agents_and_subtracts_lines_up() -> None:
    s = AdaptiveSettings(start_level=2.0)
    _, calls, _ = adaptive_step(s, initial_state(s), obs(0.5, ready=2, ringing=10))
    assert calls == 2 * 20 - 10 - 18
    only = replace(s, available_only=True)
    _, calls, _ = adaptive_step(only, initial_state(only), obs(0.5, ready=2, ringing=1))
    assert calls == 2 * 2 - 1
