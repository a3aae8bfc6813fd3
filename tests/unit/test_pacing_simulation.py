"""dialer.pacing.simulation: seeded determinism, accounting, and predictive beating progressive."""

from __future__ import annotations

import random

import pytest

from dialer.pacing.controller import DialMode
from dialer.pacing.simulation import CallCenterConfig, adaptive_pacer, controller_pacer, simulate

SHORT = CallCenterConfig(hours=0.25)


def test_same_seed_same_run() -> None:
    runs = [simulate("p", SHORT, controller_pacer(DialMode.PROGRESSIVE), random.Random(3)) for _ in range(2)]
    assert runs[0] == runs[1]


def test_preview_pacer_places_nothing() -> None:
    report = simulate("preview", SHORT, controller_pacer(DialMode.PREVIEW), random.Random(1))
    assert report.calls_placed() == 0
    assert report.talk_minutes_per_agent_hour() == 0.0


def test_progressive_never_abandons_and_stays_under_the_bound() -> None:
    report = simulate("progressive", SHORT, controller_pacer(DialMode.PROGRESSIVE), random.Random(1))
    assert report.abandon_rate() == 0.0
    assert 0.0 < report.talk_minutes_per_agent_hour() < SHORT.fluid_bound_talk_minutes()


def test_fluid_bound() -> None:
    assert CallCenterConfig(talk_mean_s=180, wrap_mean_s=20).fluid_bound_talk_minutes() == pytest.approx(54.0)


def test_adaptive_runs() -> None:
    report = simulate("adaptive", SHORT, adaptive_pacer(), random.Random(1))
    assert report.calls_placed() > 0


def test_predictive_beats_progressive_within_the_abandon_limit() -> None:
    cfg = CallCenterConfig(hours=3)
    progressive = simulate("progressive", cfg, controller_pacer(DialMode.PROGRESSIVE), random.Random(11))
    predictive = simulate("predictive", cfg, controller_pacer(DialMode.PREDICTIVE), random.Random(11))
    assert predictive.talk_minutes_per_agent_hour() > 1.2 * progressive.talk_minutes_per_agent_hour()
    assert predictive.talk_minutes_per_agent_hour() < cfg.fluid_bound_talk_minutes()
    assert predictive.abandon_rate() <= 0.03
    assert max(predictive.hour_abandon_rates()) <= 0.03
