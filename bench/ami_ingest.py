"""Benchmark: AMI ingestion speed, replaying the real `burst_events` reads (about 2,160 messages, 1 MB).

Feeds the recorded recv() chunks, with their real boundaries, through `AmiParser` N times and prints
messages/s and MB/s on one core. Target: ≥ 50,000 messages/s. `ingest(chunks, on_message)` is the seam
where a later step plugs in event conversion and the call state machine as `on_message`.

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

from dialer.ami.message import AmiMessage
from dialer.ami.protocol import AmiParser
from tests.asterisk_fixtures import recv_chunks

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
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(repeat):
        messages += ingest(chunks, lambda _m: None)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    rate = messages / cpu if cpu > 0 else float("inf")
    print(f"burst_events: {len(chunks)} reads, {size / 1e6:.2f} MB, {messages // repeat} messages, x{repeat}")
    print(
        f"parser: {rate:,.0f} messages/s, {size * repeat / cpu / 1e6:.1f} MB/s per core ({wall:.2f} s wall)"
    )
    ok = rate >= TARGET_MESSAGES_PER_SECOND
    print(f"target: >= {TARGET_MESSAGES_PER_SECOND:,} messages/s -> {'OK' if ok else 'BELOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
