"""Benchmark: recording post-processing speed in × real time per core.

Generates an hour of 8 kHz call audio (60 one-minute WAVs, alternately stereo and mono, with
speech-like bursts and pauses) in a temp dir, runs `process_recording` on each file one after the other,
and prints × real time by wall clock and per core of CPU (our process plus the ffmpeg children).
Target: ≥ 100× per core.

    .venv/bin/python -m bench.recordings            # the full hour
    .venv/bin/python -m bench.recordings --smoke    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import sys
import tempfile
import time
import wave
from array import array
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file, this module's own directory would come first on sys.path and its name would
    # shadow the `recordings` package; put the repository root there instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from recordings.processing import process_recording

RATE = 8000
BLOCK = RATE // 50  # 20 ms


def _voiced_blocks(rng: random.Random, variants: int = 16) -> list[array]:
    """A few 20 ms blocks of a harmonic 'voice' at different pitches and levels, reused to build bursts."""
    blocks = []
    for _ in range(variants):
        pitch = rng.choice([125.0, 150.0, 200.0, 250.0])  # whole periods in 20 ms: no clicks when tiled
        level = rng.uniform(0.05, 0.4)
        weights = [1.0, 0.6, 0.4, 0.25, 0.15]
        norm = sum(weights)
        blocks.append(
            array(
                "h",
                (
                    round(
                        32767
                        * level
                        * sum(
                            w * math.sin(2 * math.pi * pitch * (k + 1) * i / RATE)
                            for k, w in enumerate(weights)
                        )
                        / norm
                    )
                    for i in range(BLOCK)
                ),
            )
        )
    return blocks


def _speech_like(seconds: float, rng: random.Random, blocks: list[array], talk_share: float) -> array:
    """Alternate bursts (0.3-2.5 s) and pauses (0.2-3 s, sometimes 12 s) until `seconds` are filled."""
    total = int(seconds * 50)
    silent = array("h", bytes(2 * BLOCK))
    out = array("h")
    filled = 0
    while filled < total:
        if rng.random() < talk_share:
            n = int(rng.uniform(0.3, 2.5) * 50)
            for _ in range(min(n, total - filled)):
                out.extend(rng.choice(blocks))
        else:
            n = int((12.0 if rng.random() < 0.03 else rng.uniform(0.2, 3.0)) * 50)
            for _ in range(min(n, total - filled)):
                out.extend(silent)
        filled += n
    return out[: total * BLOCK]


def generate(directory: Path, files: int, seconds: float, seed: int = 42) -> float:
    """Write `files` WAVs of `seconds` each into `directory`; return the total audio seconds."""
    rng = random.Random(seed)
    blocks = _voiced_blocks(rng)
    for index in range(files):
        stereo = index % 2 == 0
        agent = _speech_like(seconds, rng, blocks, 0.5)
        if stereo:
            customer = _speech_like(seconds, rng, blocks, 0.5)
            frames = array("h", bytes(4 * len(agent)))
            frames[0::2] = agent
            frames[1::2] = customer
        else:
            frames = agent
        with wave.open(str(directory / f"call-{index:03d}.wav"), "wb") as wav:
            wav.setnchannels(2 if stereo else 1)
            wav.setsampwidth(2)
            wav.setframerate(RATE)
            wav.writeframes(frames.tobytes())
    return files * seconds


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; exit 1 if any file failed."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run (4 files of 5 s)")
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-transcode", action="store_true", help="metrics only (as if ffmpeg were absent)")
    args = parser.parse_args(argv)
    files, seconds = (4, 5.0) if args.smoke else (args.files, args.seconds)

    with tempfile.TemporaryDirectory(prefix="bench-recordings-") as tmp:
        src_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        src_dir.mkdir()
        started = time.perf_counter()
        audio_s = generate(src_dir, files, seconds)
        took = time.perf_counter() - started
        print(f"generated {files} files, {audio_s / 60:.1f} min of audio in {took:.1f} s")

        cpu0, wall0 = _cpu_seconds(), time.perf_counter()
        failures = 0
        transcoded = 0
        for src in sorted(src_dir.glob("*.wav")):
            result = process_recording(
                src, out_dir, keep_original=False, ffmpeg=None if args.no_transcode else "auto"
            )
            failures += result.status != "processed" or result.problem is not None
            transcoded += result.transcoded_format is not None
        wall, cpu = time.perf_counter() - wall0, _cpu_seconds() - cpu0

    print(f"processed {files} files ({transcoded} transcoded, {failures} failed)")
    print(f"wall {wall:.2f} s -> {audio_s / wall:.0f}x real time (one worker)")
    print(f"cpu  {cpu:.2f} s -> {audio_s / cpu:.0f}x real time per core (incl. ffmpeg)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
