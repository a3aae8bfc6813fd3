"""recordings.metrics on synthetic PCM: tones and silences whose expected metrics are known exactly."""

from __future__ import annotations

import math
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recordings.metrics import (
    DBFS_FLOOR,
    compute_metrics,
    deinterleave,
    frame_energies_dbfs,
    frame_sums_of_squares,
    to_dbfs,
    waveform_peaks,
)

RATE = 8000


def tone(seconds: float, amplitude: float = 0.5, freq: float = 440.0, rate: int = RATE) -> array:
    n = round(seconds * rate)
    return array("h", (round(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)))


def silence(seconds: float, rate: int = RATE) -> array:
    return array("h", bytes(2 * round(seconds * rate)))


def test_to_dbfs_full_scale_square_wave_is_zero_and_silence_is_floor() -> None:
    assert to_dbfs(32768.0**2) == pytest.approx(0.0)
    assert to_dbfs(0.0) == DBFS_FLOOR
    assert to_dbfs(1e-30) == DBFS_FLOOR


def test_sine_frame_energy_is_three_db_below_its_peak() -> None:
    # A sine's RMS is peak/sqrt(2): a half-scale sine sits at about -6.02 - 3.01 = -9.03 dBFS.
    levels = frame_energies_dbfs(tone(0.2, freq=400), RATE)  # whole cycles per 20 ms frame
    assert len(levels) == 10
    assert all(level == pytest.approx(-9.03, abs=0.05) for level in levels)


def test_frame_sums_keep_a_short_last_frame() -> None:
    samples = array("h", [1, 2, 3, 4, 5])
    assert frame_sums_of_squares(samples, 2) == [5, 25, 25]
    with pytest.raises(ValueError):
        frame_sums_of_squares(samples, 0)


def test_mono_talk_and_silence() -> None:
    pcm = tone(1.0) + silence(2.0) + tone(1.0)
    m = compute_metrics([pcm], RATE)
    assert m.duration_s == 4.0
    assert m.talk_ratio == (0.5,)
    assert m.silence_ratio == 0.5
    assert m.longest_silence_s == pytest.approx(2.0)
    assert m.overtalk_s is None
    # Half the time a -9.03 dBFS sine, half digital silence: 3 dB lower overall.
    assert m.loudness_dbfs == pytest.approx(-12.04, abs=0.05)


def test_quiet_noise_below_threshold_counts_as_silence() -> None:
    faint = tone(1.0, amplitude=0.005)  # about -49 dBFS: line noise, not talk
    assert compute_metrics([faint], RATE).talk_ratio == (0.0,)
    assert compute_metrics([faint], RATE, silence_threshold_dbfs=-60).talk_ratio == (1.0,)


def test_stereo_overtalk_and_per_channel_talk() -> None:
    # Agent talks 0-2 s, customer 1.5-3 s: 0.5 s of overtalk, 1 s of silence at the end.
    agent = tone(2.0) + silence(2.0)
    customer = silence(1.5) + tone(1.5, freq=300) + silence(1.0)
    m = compute_metrics([agent, customer], RATE)
    assert m.talk_ratio == (0.5, 0.375)
    assert m.overtalk_s == pytest.approx(0.5)
    assert m.silence_ratio == 0.25
    assert m.longest_silence_s == pytest.approx(1.0)


def test_longest_silence_is_the_longest_run_not_the_total() -> None:
    pcm = silence(1.0) + tone(0.5) + silence(3.0) + tone(0.5) + silence(1.0)
    m = compute_metrics([pcm], RATE)
    assert m.longest_silence_s == pytest.approx(3.0)
    assert m.silence_ratio == pytest.approx(5 / 6, abs=0.001)


def test_all_silence() -> None:
    m = compute_metrics([silence(1.0)], RATE)
    assert (m.talk_ratio, m.silence_ratio, m.longest_silence_s) == ((0.0,), 1.0, 1.0)
    assert m.loudness_dbfs == DBFS_FLOOR
    assert set(m.peaks) == {0.0}


def test_peaks_count_and_range() -> None:
    pcm = silence(1.0) + tone(1.0, amplitude=1.0)
    peaks = compute_metrics([pcm], RATE).peaks
    assert len(peaks) == 400
    assert peaks[:200] == (0.0,) * 200
    assert all(0.99 <= p <= 1.0 for p in peaks[200:])


def test_peaks_clamp_most_negative_sample() -> None:
    assert waveform_peaks([array("h", [-32768, 0])], 1) == (1.0,)
    assert waveform_peaks([array("h")], 10) == ()


def test_short_input_gives_fewer_peaks() -> None:
    assert len(waveform_peaks([array("h", range(50))], 400)) == 50


def test_deinterleave_drops_a_dangling_sample() -> None:
    left, right = deinterleave(array("h", [1, -1, 2, -2, 3]), 2)
    assert (list(left), list(right)) == ([1, 2], [-1, -2])


def test_channels_of_unequal_length_are_cut_to_the_shorter() -> None:
    m = compute_metrics([tone(1.0), tone(0.5)], RATE)
    assert m.duration_s == 0.5


def test_rejects_nonsense_arguments() -> None:
    with pytest.raises(ValueError):
        compute_metrics([], RATE)
    with pytest.raises(ValueError):
        compute_metrics([tone(0.1)], 0)
    with pytest.raises(ValueError):
        compute_metrics([tone(0.1)], RATE, frame_ms=0)


def test_16k_rate_uses_the_same_time_frames() -> None:
    pcm = tone(0.5, rate=16000) + silence(0.5, rate=16000)
    m = compute_metrics([pcm], 16000)
    assert (m.duration_s, m.talk_ratio, m.longest_silence_s) == (1.0, (0.5,), 0.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-32768, 32767), max_size=2000), st.integers(1, 2))
def test_metrics_stay_in_range(samples: list[int], channels: int) -> None:
    pcm = array("h", samples)
    per_channel = deinterleave(pcm, channels)
    if not per_channel[0] or not per_channel[-1]:
        return
    m = compute_metrics(per_channel, RATE)
    assert all(0.0 <= r <= 1.0 for r in m.talk_ratio)
    assert 0.0 <= m.silence_ratio <= 1.0
    assert 0.0 <= m.longest_silence_s <= m.duration_s
    assert DBFS_FLOOR <= m.loudness_dbfs <= 0.0
    assert all(0.0 <= p <= 1.0 for p in m.peaks)
    assert (m.overtalk_s is None) == (channels == 1)
