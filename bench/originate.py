"""Benchmark: Originate throughput against the sandbox PBX over real TCP, every attempt correlated.

Sends N async Originates (ChannelId = attempt id, ActionID = attempt id) through our AMI client as fast
as the replies come back, feeds every event through the typed-event converter and the attempt tracker,
and waits until each attempt has finished. Reports originates/s (send rate) and completed attempts/s,
and fails unless every attempt is correlated to exactly one outcome. Target: ≥ 50 calls/s.

    .venv/bin/python -m bench.originate            # 2,000 calls
    .venv/bin/python -m bench.originate --smoke    # 100 calls, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from dialer.ami.client import AmiClient
from dialer.ami.events import to_event
from dialer.ami.message import AmiMessage
from dialer.attempts.tracker import AttemptFinished, AttemptTracker
from dialer.sandbox.callmodel import CallModel
from dialer.sandbox.pbx import SandboxPbx

TARGET_CALLS_PER_SECOND = 50.0


async def run(calls: int, concurrency: int) -> dict[str, float]:
    """Originate `calls` calls with at most `concurrency` actions awaiting their reply."""
    pbx = SandboxPbx(model=CallModel(answer_rate=0.5, talk_mean_s=20, ring_mean_s=5), time_scale=0.01)
    await pbx.start()
    tracker = AttemptTracker()
    outcomes: Counter[str] = Counter()
    done = asyncio.Event()

    async def on_event(message: AmiMessage) -> None:
        for update in tracker.feed(to_event(message), time.monotonic()):
            if isinstance(update, AttemptFinished):
                outcomes[update.outcome.value] += 1
                if sum(outcomes.values()) == calls:
                    done.set()

    client = AmiClient(
        host="127.0.0.1",
        port=pbx.port,
        username="dialer",
        secret="dialer-secret",
        on_event=on_event,
        ping_interval=0,
    )
    await client.connect()
    gate = asyncio.Semaphore(concurrency)

    async def originate(n: int) -> None:
        attempt = f"bench-{n:06d}"
        tracker.expect(attempt, attempt, at=time.monotonic(), channel_ids=(f"{attempt}-a", f"{attempt}-b"))
        fields = [
            ("Channel", f"Local/1380013{n:04d}@outbound"),
            ("Context", "default"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Timeout", "30000"),
            ("Async", "true"),
            ("ChannelId", f"{attempt}-a"),
            ("OtherChannelId", f"{attempt}-b"),
            ("Variable", f"CC_ATTEMPT_ID={attempt}"),
        ]
        async with gate:
            reply = await client.send_action("Originate", fields, action_id=attempt)
        assert reply.name == "Success", reply

    started = time.perf_counter()
    await asyncio.gather(*(originate(n) for n in range(calls)))
    sent = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), timeout=120)
    finished = time.perf_counter() - started
    await client.close()
    await pbx.stop()
    return {
        "calls": calls,
        "sent_s": sent,
        "finished_s": finished,
        "originate_rate": calls / sent,
        "completion_rate": calls / finished,
        "correlated": sum(outcomes.values()),
        "open": len(tracker.open_attempts),
        "pbx_originates": pbx.originates,
        **{f"outcome_{k}": v for k, v in outcomes.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the figures; exit 1 below target or on any uncorrelated attempt."""
    args = argparse.ArgumentParser(description="Originate throughput against the sandbox PBX")
    args.add_argument("--smoke", action="store_true")
    args.add_argument("--calls", type=int, default=2000)
    args.add_argument("--concurrency", type=int, default=64)
    opts = args.parse_args(argv)
    calls = 100 if opts.smoke else opts.calls
    r = asyncio.run(run(calls, opts.concurrency))
    print(f"originates: {calls} in {r['sent_s']:.2f} s -> {r['originate_rate']:,.0f} calls/s (send rate)")
    print(f"all finished after {r['finished_s']:.2f} s -> {r['completion_rate']:,.0f} calls/s end to end")
    mix = ", ".join(
        f"{k.removeprefix('outcome_')} {int(v)}" for k, v in r.items() if k.startswith("outcome_")
    )
    print(f"correlated: {int(r['correlated'])}/{calls}, open: {int(r['open'])}; outcomes: {mix}")
    ok = (
        r["originate_rate"] >= TARGET_CALLS_PER_SECOND
        and r["correlated"] == calls == r["pbx_originates"]
        and r["open"] == 0
    )
    print(f"target: >= {TARGET_CALLS_PER_SECOND:.0f} calls/s, all correlated -> {'OK' if ok else 'BELOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
