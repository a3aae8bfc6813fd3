"""Pure recording metrics: talk/silence ratios, longest silence, overtalk, loudness and waveform peaks.

Input is 16-bit signed PCM, one ``array('h')`` per channel (MixMonitor writes mono by default, stereo
with the ``D`` option: channel 0 is what the channel read, channel 1 what it wrote). numpy is not a
dependency, so the per-frame sums run in C through ``sum(map(operator.mul, chunk, chunk))`` over
20 ms slices; that keeps a one-hour 8 kHz file well under a second per channel.
"""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

FULL_SCALE = 32768.0
DBFS_FLOOR = -96.0  # below the quantisation noise of 16-bit PCM; stands in for log(0)
DEFAULT_SILENCE_THRESHOLD_DBFS = -40.0
DEFAULT_FRAME_MS = 20
DEFAULT_PEAK_COUNT = 400


@dataclass(frozen=True, slots=True)
class RecordingMetrics:
    """What QA sampling and the player need to know about one recording."""

    duration_s: float
    talk_ratio: tuple[float, ...]  # per channel, share of frames above the silence threshold
    silence_ratio: float  # share of frames where no channel is above the threshold
    longest_silence_s: float
    overtalk_s: float | None  # both channels active at once; None for mono
    loudness_dbfs: float  # RMS level of the whole recording, all channels
    peaks: tuple[float, ...]  # ~DEFAULT_PEAK_COUNT values in 0..1 for a waveform display


def to_dbfs(mean_square: float) -> float:
    """Convert a mean square of 16-bit samples to dBFS, clamped at DBFS_FLOOR."""
    if mean_square <= 0.0:
        return DBFS_FLOOR
    return max(DBFS_FLOOR, 10.0 * math.log10(mean_square / (FULL_SCALE * FULL_SCALE)))


def frame_sums_of_squares(samples: Sequence[int], frame_len: int) -> list[int]:
    """Sum of squared samples for each consecutive frame of `frame_len` samples (last frame may be short)."""
    if frame_len <= 0:
        raise ValueError("frame_len must be positive")
    mul = operator.mul
    sums = []
    for start in range(0, len(samples), frame_len):
        chunk = samples[start : start + frame_len]
        sums.append(sum(map(mul, chunk, chunk)))
    return sums


def frame_energies_dbfs(
    samples: Sequence[int], sample_rate: int, frame_ms: int = DEFAULT_FRAME_MS
) -> list[float]:
    """Per-frame RMS level in dBFS of one channel."""
    frame_len = _frame_len(sample_rate, frame_ms)
    n = len(samples)
    result = []
    for index, total in enumerate(frame_sums_of_squares(samples, frame_len)):
        length = min(frame_len, n - index * frame_len)
        result.append(to_dbfs(total / length))
    return result


def waveform_peaks(channels: Sequence[Sequence[int]], count: int = DEFAULT_PEAK_COUNT) -> tuple[float, ...]:
    """Up to `count` peak magnitudes in 0..1 across all channels, evenly spaced over time."""
    n = min((len(c) for c in channels), default=0)
    if n == 0 or count <= 0:
        return ()
    buckets = min(count, n)
    peaks = []
    for index in range(buckets):
        # Integer boundaries spread the remainder, so there are exactly `buckets` non-empty buckets.
        start, end = index * n // buckets, (index + 1) * n // buckets
        top = 0
        for channel in channels:
            chunk = channel[start:end]
            # -32768 has no positive twin, so clamp to keep the value within 0..1.
            top = max(top, max(chunk), -min(chunk))
        peaks.append(round(min(1.0, top / FULL_SCALE), 4))
    return tuple(peaks)


def compute_metrics(
    samples_per_channel: Sequence[Sequence[int]],
    sample_rate: int,
    *,
    silence_threshold_dbfs: float = DEFAULT_SILENCE_THRESHOLD_DBFS,
    frame_ms: int = DEFAULT_FRAME_MS,
    peak_count: int = DEFAULT_PEAK_COUNT,
) -> RecordingMetrics:
    """Compute talk/silence/overtalk/loudness/peaks for PCM channels of equal rate."""
    if not samples_per_channel:
        raise ValueError("at least one channel is needed")
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    n = min(len(c) for c in samples_per_channel)
    channels = [c[:n] if len(c) != n else c for c in samples_per_channel]
    frame_len = _frame_len(sample_rate, frame_ms)
    frame_s = frame_len / sample_rate
    # Compare sums of squares against the threshold in the linear domain: no log per frame.
    threshold_ms = (FULL_SCALE * FULL_SCALE) * 10.0 ** (silence_threshold_dbfs / 10.0)

    activity: list[list[bool]] = []
    total_energy = 0
    for channel in channels:
        sums = frame_sums_of_squares(channel, frame_len)
        total_energy += sum(sums)
        lengths = [frame_len] * len(sums)
        if sums and n % frame_len:
            lengths[-1] = n % frame_len
        activity.append([s / length > threshold_ms for s, length in zip(sums, lengths, strict=True)])

    frames = len(activity[0])
    talk_ratio = tuple((sum(a) / frames) if frames else 0.0 for a in activity)
    any_active = [any(flags) for flags in zip(*activity, strict=True)]
    silent_frames = frames - sum(any_active)
    longest = run = 0
    for active in any_active:
        run = 0 if active else run + 1
        longest = max(longest, run)
    overtalk: float | None = None
    if len(channels) == 2:
        overtalk = round(sum(a and b for a, b in zip(activity[0], activity[1], strict=True)) * frame_s, 3)

    sample_count = n * len(channels)
    return RecordingMetrics(
        duration_s=round(n / sample_rate, 3),
        talk_ratio=tuple(round(r, 4) for r in talk_ratio),
        silence_ratio=round(silent_frames / frames, 4) if frames else 1.0,
        longest_silence_s=round(min(longest * frame_s, n / sample_rate), 3),
        overtalk_s=overtalk,
        loudness_dbfs=round(to_dbfs(total_energy / sample_count), 2) if sample_count else DBFS_FLOOR,
        peaks=waveform_peaks(channels, peak_count),
    )


def deinterleave(pcm: array, channels: int) -> list[array]:
    """Split interleaved 16-bit samples into one array per channel."""
    if channels == 1:
        return [pcm]
    usable = len(pcm) - len(pcm) % channels
    return [pcm[i:usable:channels] for i in range(channels)]


def _frame_len(sample_rate: int, frame_ms: int) -> int:
    if frame_ms <= 0:
        raise ValueError("frame_ms must be positive")
    return max(1, sample_rate * frame_ms // 1000)
