"""Pacing: how many calls to place now (pure controller, estimates, VICIdial-style baseline, simulator)."""

from dialer.pacing.controller import (
    DialMode,
    PacingDecision,
    PacingInput,
    PredictiveTuning,
    calls_to_place,
)
from dialer.pacing.estimator import BetaPrior, DialOutcome, Estimates, HandledCall, estimate

__all__ = [
    "BetaPrior",
    "DialMode",
    "DialOutcome",
    "Estimates",
    "HandledCall",
    "PacingDecision",
    "PacingInput",
    "PredictiveTuning",
    "calls_to_place",
    "estimate",
]
