"""recordings.qa.sampling: risk reasons, quotas per agent, period bounds and seeded determinism."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from recordings.qa.sampling import CallForSampling, SamplingPolicy, risk_reasons, select_for_review

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
END = START + timedelta(days=1)
POLICY = SamplingPolicy()


def call(call_id: int, agent_id: int | None = 1, **kw: object) -> CallForSampling:
    fields: dict[str, object] = {"started_at": START + timedelta(minutes=call_id), "talk_s": 120.0}
    fields.update(kw)
    return CallForSampling(call_id, agent_id, **fields)  # type: ignore[arg-type]


def sample(
    calls: list[CallForSampling], seed: int | str = 7, **kw: object
) -> list[tuple[int, tuple[str, ...]]]:
    picked = select_for_review(calls, POLICY, seed=seed, period_start=START, period_end=END, **kw)  # type: ignore[arg-type]
    return [(p.call_id, p.reasons) for p in picked]


def test_risk_reasons() -> None:
    assert risk_reasons(call(1), POLICY) == ()
    assert risk_reasons(call(1, talk_s=19.9), POLICY) == ("short_call",)
    assert risk_reasons(call(1, talk_s=20.0), POLICY) == ()
    assert risk_reasons(call(1, longest_silence_s=10.5), POLICY) == ("long_silence",)
    assert risk_reasons(call(1, longest_silence_s=10.0), POLICY) == ()
    assert risk_reasons(call(1, disposition="DNC"), POLICY) == ("dnc_disposition",)
    # An abandon is short by nature; it is not flagged twice.
    assert risk_reasons(call(1, None, abandoned=True, talk_s=0.0), POLICY) == ("abandoned",)
    assert risk_reasons(call(1, disposition="do_not_call", talk_s=5, longest_silence_s=12), POLICY) == (
        "dnc_disposition",
        "long_silence",
        "short_call",
    )


def test_risky_calls_first_worst_first_then_random() -> None:
    calls = [call(i) for i in range(1, 21)]
    calls[4] = call(5, talk_s=3.0)  # short
    calls[9] = call(10, disposition="dnc")  # worst
    calls[14] = call(15, longest_silence_s=30.0)
    calls[17] = call(18, talk_s=5.0)  # short
    picked = sample(calls)
    assert len(picked) == POLICY.risk_per_agent + POLICY.random_per_agent
    assert picked[0] == (10, ("dnc_disposition",))
    assert picked[1] == (15, ("long_silence",))
    assert picked[2][1] == ("short_call",) and picked[2][0] in {5, 18}
    assert [reasons for _, reasons in picked[3:]] == [("random",), ("random",)]
    assert len({cid for cid, _ in picked}) == 5


def test_quotas_are_per_agent_and_unassigned_calls_have_their_own() -> None:
    calls = [call(i, agent_id=i % 3 + 1) for i in range(60)] + [
        call(100 + i, None, abandoned=True, talk_s=0.0) for i in range(10)
    ]
    picked = select_for_review(calls, POLICY, seed=1, period_start=START, period_end=END)
    per_agent: dict[int | None, int] = {}
    for p in picked:
        per_agent[p.agent_id] = per_agent.get(p.agent_id, 0) + 1
    assert per_agent == {1: 2, 2: 2, 3: 2, None: 5}
    unassigned = [p for p in picked if p.agent_id is None]
    assert [p.reasons for p in unassigned[:3]] == [("abandoned",)] * 3
    no_unassigned = SamplingPolicy(include_unassigned=False)
    assert all(
        p.agent_id is not None
        for p in select_for_review(calls, no_unassigned, seed=1, period_start=START, period_end=END)
    )


def test_small_pools_give_what_there_is() -> None:
    assert sample([call(1)]) == [(1, ("random",))]
    assert sample([]) == []


def test_period_is_half_open_and_reviewed_calls_are_skipped() -> None:
    inside = call(1)
    at_end = call(2, started_at=END)
    before = call(3, started_at=START - timedelta(seconds=1))
    at_start = call(4, started_at=START)
    assert sorted(cid for cid, _ in sample([inside, at_end, before, at_start])) == [1, 4]
    assert [cid for cid, _ in sample([inside, at_start], already_reviewed=frozenset({1}))] == [4]


def test_same_seed_same_sample_whatever_the_input_order() -> None:
    calls = [call(i, agent_id=i % 4, talk_s=float(i % 50)) for i in range(200)]
    shuffled = calls[:]
    random.Random(3).shuffle(shuffled)
    assert sample(calls, seed="2026-11-23") == sample(shuffled, seed="2026-11-23")


def test_different_seeds_differ() -> None:
    calls = [call(i) for i in range(200)]
    samples = {tuple(sample(calls, seed=s)) for s in range(10)}
    assert len(samples) > 5


def test_one_agents_sample_does_not_depend_on_other_agents() -> None:
    mine = [call(i, agent_id=1) for i in range(50)]
    others = [call(1000 + i, agent_id=2) for i in range(50)]
    alone = [p for p in sample(mine) if p[0] < 1000]
    together = [p for p in sample(mine + others) if p[0] < 1000]
    assert alone == together


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.floats(0, 600),
            st.booleans(),
            st.sampled_from([None, "sale", "dnc"]),
            st.none() | st.floats(0, 60),
        ),
        max_size=60,
    ),
    st.integers(0, 10**6),
)
def test_sample_respects_quotas_and_never_repeats(
    rows: list[tuple[int, float, bool, str | None, float | None]], seed: int
) -> None:
    calls = [
        call(i, agent_id=a, talk_s=t, abandoned=ab, disposition=d, longest_silence_s=s)
        for i, (a, t, ab, d, s) in enumerate(rows)
    ]
    picked = select_for_review(calls, POLICY, seed=seed, period_start=START, period_end=END)
    ids = [p.call_id for p in picked]
    assert len(ids) == len(set(ids))
    for agent in {c.agent_id for c in calls}:
        mine = [p for p in picked if p.agent_id == agent]
        assert sum(p.reasons != ("random",) for p in mine) <= POLICY.risk_per_agent
        assert sum(p.reasons == ("random",) for p in mine) <= POLICY.random_per_agent
        pool = [c for c in calls if c.agent_id == agent]
        risky = min(POLICY.risk_per_agent, sum(bool(risk_reasons(c, POLICY)) for c in pool))
        assert len(mine) == risky + min(POLICY.random_per_agent, len(pool) - risky)
