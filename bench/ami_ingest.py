"""Benchmark: AMI ingestion speed, replaying the real `burst_events` reads (about 2,160 messages, 1 MB).

Feeds the recorded recv() chunks, with their real boundaries, through `AmiParser` N times and prints
messages/s and MB/s on one core, first for the parser alone (baseline) and then for the full ingestion
path the dialer runs: parser → typed events → attempt state machine, with the 20 Originates of the
transcript registered so every event is correlated. Target: ≥ 50,000 events/s through the full path.

    .venv/bin/python -m bench.ami_ingest            # 50 replays
    .venv/bin/python -m bench.ami_ingest --smoke    # 2 replays, for CI
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from dialer.ami.events import to_event
from dialer.ami.message import AmiMessage
from dialer.ami.protocol import AmiParser
from dialer.attempts.tracker import AttemptFinished, AttemptTracker
from tests.asterisk_fixtures import load_transcript, recv_chunks

TARGET_MESSAGES_PER_SECOND = 50_000


def ingest(chunks: Sequence[bytes], on_message: Callable[[AmiMessage], object]) -> int:
    """Parse one connection's reads and hand each message to `on_message` in order; return the count."""
    parser = AmiParser()
    count = 0
    for chunk in chunks:
        for message in parser.feed(chunk):
            on_message(message)
            count += 1
    return count


def burst_originates() -> list[tuple[str, str]]:
    """(attempt id, ActionID) of every Originate the burst transcript sent."""
    pairs = []
    for line in load_transcript("burst_events"):
        if line.direction == "send" and line.data.startswith("Action: Originate"):
            fields = dict(row.partition(": ")[::2] for row in line.data.split("\r\n") if ": " in row)
            pairs.append((fields["Variable"].split("=", 1)[1], fields["ActionID"]))
    return pairs


def ingest_full(chunks: Sequence[bytes], originates: Sequence[tuple[str, str]]) -> tuple[int, int]:
    """Parser → typed events → attempt tracker; return (messages, attempts finished)."""
    tracker = AttemptTracker()
    for attempt_id, action_id in originates:
        tracker.expect(attempt_id, action_id, at=0.0)
    finished = 0

    def on_message(message: AmiMessage) -> None:
        nonlocal finished
        if message.kind == "event":
            for update in tracker.feed(to_event(message), 0.0):
                finished += isinstance(update, AttemptFinished)

    return ingest(chunks, on_message), finished


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print throughput; exit 1 if below target."""
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    args.add_argument("--smoke", action="store_true", help="tiny run for CI")
    args.add_argument("--repeat", type=int, default=50)
    opts = args.parse_args(argv)
    repeat = 2 if opts.smoke else opts.repeat
    chunks = recv_chunks("burst_events")
    size = sum(len(c) for c in chunks)
    messages = 0
    cpu_started = time.process_time()
    for _ in range(repeat):
        messages += ingest(chunks, lambda _m: None)
    parser_cpu = time.process_time() - cpu_started
    parser_rate = messages / parser_cpu if parser_cpu > 0 else float("inf")

    originates = burst_originates()
    messages = finished = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(repeat):
        count, done = ingest_full(chunks, originates)
        messages += count
        finished += done
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    rate = messages / cpu if cpu > 0 else float("inf")
    print(f"burst_events: {len(chunks)} reads, {size / 1e6:.2f} MB, {messages // repeat} messages, x{repeat}")
    mb_per_s = size * repeat / parser_cpu / 1e6
    print(f"parser alone: {parser_rate:,.0f} messages/s ({mb_per_s:.1f} MB/s) per core")
    print(
        f"parser + typed events + attempt tracker: {rate:,.0f} events/s per core "
        f"({rate / parser_rate:.2f}x of parser alone, {wall:.2f} s wall)"
    )
    correlated = finished == len(originates) * repeat
    print(f"attempts finished: {finished}/{len(originates) * repeat} ({'all' if correlated else 'MISSING'})")
    ok = rate >= TARGET_MESSAGES_PER_SECOND and correlated
    print(f"target: >= {TARGET_MESSAGES_PER_SECOND:,} events/s -> {'OK' if ok else 'BELOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
