"""Benchmark: pacing quality in simulation, talk minutes per agent-hour at abandon <= 3 %.

Runs the discrete-event call center (`dialer.pacing.simulation`) with 20 agents, a 20 % live-answer
rate, 3-minute mean talk (lognormal), 15 s wrap-up, 25 s no-answer timeout and the 2 s safe harbour,
for one 8-hour shift with the same seed for every pacer, and compares:

* progressive (one line per ready agent),
* the VICIdial-style adaptive baseline (ADAPT_HARD_LIMIT and ADAPT_TAPERED, VICIdial's defaults:
  start level 1.0, max level 3.0, drop limit 3 %, intensity 0, available-only tally N),
* our predictive controller,
* the fluid bound (agents never idle: 60 x talk / (talk + wrap)).

Targets: predictive >= 1.5x progressive, >= 10 % above the best adaptive variant, abandon <= 3 % in
every hour. Prints a table and a markdown block for bench/RESULTS.md.

    .venv/bin/python -m bench.pacing            # 8 simulated hours
    .venv/bin/python -m bench.pacing --smoke    # 1 simulated hour, a few seconds
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from dialer.pacing.adaptive_baseline import AdaptiveSettings, AdaptMethod
from dialer.pacing.controller import DialMode
from dialer.pacing.simulation import (
    CallCenterConfig,
    Pacer,
    SimulationReport,
    adaptive_pacer,
    controller_pacer,
    simulate,
)

TARGET_VS_PROGRESSIVE = 1.5
TARGET_VS_ADAPTIVE = 1.10
ABANDON_LIMIT = 0.03


@dataclass(frozen=True)
class Row:
    name: str
    talk: float
    abandon: float | None
    worst_hour: float | None
    placed: int | None
    seconds: float


def _run(name: str, cfg: CallCenterConfig, pacer: Pacer, seed: int) -> tuple[SimulationReport, Row]:
    started = time.perf_counter()
    report = simulate(name, cfg, pacer, random.Random(seed))
    took = time.perf_counter() - started
    row = Row(
        name,
        report.talk_minutes_per_agent_hour(),
        report.abandon_rate(),
        max(report.hour_abandon_rates()),
        report.calls_placed(),
        took,
    )
    return report, row


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _table(rows: Sequence[Row], progressive: float, adaptive: float) -> list[str]:
    lines = [
        "| pacer | talk min / agent-hour | vs progressive | vs adaptive | abandon | worst hour | calls |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.talk:.1f} | {r.talk / progressive:.2f}x | {r.talk / adaptive:.2f}x "
            f"| {_pct(r.abandon)} | {_pct(r.worst_hour)} | {'-' if r.placed is None else r.placed} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table; exit 1 if a target is missed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="1 simulated hour")
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    hours = 1.0 if args.smoke else args.hours
    cfg = CallCenterConfig(agents=20, answer_rate=0.20, talk_mean_s=180.0, hours=hours)
    shift_end = hours * 3600.0

    runs = [
        ("progressive", controller_pacer(DialMode.PROGRESSIVE)),
        ("adaptive ADAPT_HARD_LIMIT", adaptive_pacer(AdaptiveSettings(shift_end_s=shift_end))),
        (
            "adaptive ADAPT_TAPERED",
            adaptive_pacer(AdaptiveSettings(method=AdaptMethod.TAPERED, shift_end_s=shift_end)),
        ),
        ("predictive (ours)", controller_pacer(DialMode.PREDICTIVE)),
    ]
    reports: dict[str, SimulationReport] = {}
    rows: list[Row] = []
    for name, pacer in runs:
        report, row = _run(name, cfg, pacer, args.seed)
        reports[name] = report
        rows.append(row)
    rows.append(Row("fluid bound", cfg.fluid_bound_talk_minutes(), None, None, None, 0.0))

    progressive = rows[0].talk
    adaptive_rows = [r for r in rows if r.name.startswith("adaptive")]
    adaptive = max(r.talk for r in adaptive_rows)
    ours = next(r for r in rows if r.name == "predictive (ours)")
    table = _table(rows, progressive, adaptive)

    print(
        f"{cfg.agents} agents, answer rate {cfg.answer_rate:.0%}, talk {cfg.talk_mean_s / 60:.0f} min mean "
        f"({cfg.talk_distribution}), wrap {cfg.wrap_mean_s:.0f} s, no-answer timeout "
        f"{cfg.no_answer_timeout_s:.0f} s, {hours:g} h, seed {args.seed}"
    )
    print(f"'vs adaptive' is against the better adaptive variant ({adaptive:.1f} talk min / agent-hour)")
    for r in rows[:-1]:
        print(f"  {r.name}: simulated in {r.seconds:.1f} s")
    per_hour = reports["predictive (ours)"].hour_abandon_rates()
    print("predictive abandon per hour: " + ", ".join(f"{a:.1%}" for a in per_hour))
    print()
    print("```markdown")
    print(f"### Pacing ({hours:g} simulated h, seed {args.seed})")
    print()
    for line in table:
        print(line)
    print("```")

    missed = []
    if ours.talk < TARGET_VS_PROGRESSIVE * progressive:
        missed.append(f"{ours.talk / progressive:.2f}x progressive < {TARGET_VS_PROGRESSIVE}x")
    if ours.talk < TARGET_VS_ADAPTIVE * adaptive:
        missed.append(f"{ours.talk / adaptive:.2f}x adaptive < {TARGET_VS_ADAPTIVE}x")
    if (ours.worst_hour or 0.0) > ABANDON_LIMIT:
        missed.append(f"worst hour abandon {_pct(ours.worst_hour)} > {ABANDON_LIMIT:.0%}")
    if missed:
        print("targets missed: " + "; ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
