"""recordings.processing and .storage on real files: the Asterisk fixture and generated WAVs."""

from __future__ import annotations

import math
import shutil
import subprocess
import wave
from array import array
from pathlib import Path

import pytest

from recordings.processing import process_recording
from recordings.storage import InvalidStorageKey, LocalStorage, RecordingStorage, validate_key
from tests.asterisk_fixtures import FIXTURE_DIR

SAMPLE = FIXTURE_DIR / "recording_sample.wav"
HAS_FFMPEG = shutil.which("ffmpeg") is not None
needs_ffmpeg = pytest.mark.skipif(not HAS_FFMPEG, reason="ffmpeg not installed")


def write_wav(path: Path, channels: list[array], rate: int = 8000) -> Path:
    frames = array("h", [s for group in zip(*channels, strict=True) for s in group])
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(len(channels))
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames.tobytes())
    return path


def tone(seconds: float, rate: int = 8000, amplitude: float = 0.3) -> array:
    n = round(seconds * rate)
    return array("h", (round(amplitude * 32767 * math.sin(2 * math.pi * 400 * i / rate)) for i in range(n)))


def silence(seconds: float, rate: int = 8000) -> array:
    return array("h", bytes(2 * round(seconds * rate)))


def probe(path: Path) -> str:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,sample_rate,channels",
            "-of",
            "csv=p=0",
            str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    )
    return out.stdout.strip()


# --- processing -------------------------------------------------------------------------------------


@needs_ffmpeg
def test_fixture_recording_is_measured_and_transcoded(tmp_path: Path) -> None:
    result = process_recording(SAMPLE, tmp_path, keep_original=False)
    assert (result.status, result.problem, result.transcoded_format) == ("processed", None, "mp3")
    assert (result.sample_rate, result.channels, result.content_type) == (8000, 1, "audio/mpeg")
    assert result.metrics is not None
    assert result.metrics.duration_s == pytest.approx(3.02)
    assert result.metrics.talk_ratio[0] > 0.5  # the greeting plus its echo fills most of the call
    assert -40 < result.metrics.loudness_dbfs < 0
    assert len(result.metrics.peaks) == 400
    assert result.output_path == tmp_path / "recording_sample.mp3"
    assert result.original_path is None
    assert result.output_path.stat().st_size < SAMPLE.stat().st_size / 3
    assert probe(result.output_path).startswith("mp3,8000,1")
    assert not list(tmp_path.glob(".*.part"))
    assert SAMPLE.exists()  # the source is never touched


@needs_ffmpeg
def test_stereo_16k_keeps_both_channels_and_measures_overtalk(tmp_path: Path) -> None:
    agent = tone(2.0, 16000) + silence(1.0, 16000)
    customer = silence(1.0, 16000) + tone(2.0, 16000)
    src = write_wav(tmp_path / "call.wav", [agent, customer], rate=16000)
    result = process_recording(src, tmp_path / "out", keep_original=True)
    assert result.status == "processed" and result.metrics is not None
    assert result.metrics.talk_ratio == pytest.approx((2 / 3, 2 / 3), abs=0.01)
    assert result.metrics.overtalk_s == pytest.approx(1.0)
    assert result.original_path == tmp_path / "out" / "call.orig.wav"
    assert result.original_path.read_bytes() == src.read_bytes()
    assert probe(result.output_path).startswith("mp3,16000,2")  # type: ignore[arg-type]


def test_without_ffmpeg_the_wav_is_kept_and_the_result_says_so(tmp_path: Path) -> None:
    result = process_recording(SAMPLE, tmp_path, keep_original=False, ffmpeg=None)
    assert result.status == "processed"
    assert (result.transcoded_format, result.content_type) == (None, "audio/wav")
    assert "ffmpeg not found" in result.note
    assert result.output_path is not None and result.output_path.read_bytes() == SAMPLE.read_bytes()


def test_keep_original_without_ffmpeg_stores_the_wav_once(tmp_path: Path) -> None:
    result = process_recording(SAMPLE, tmp_path, keep_original=True, ffmpeg=None)
    assert result.output_path == tmp_path / "recording_sample.wav"
    assert result.original_path is None
    assert [p.name for p in tmp_path.iterdir()] == ["recording_sample.wav"]


def test_broken_ffmpeg_falls_back_to_wav(tmp_path: Path) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'encoder exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    result = process_recording(SAMPLE, tmp_path / "out", keep_original=False, ffmpeg=str(fake))
    assert result.status == "processed" and result.transcoded_format is None
    assert result.problem is not None and result.problem.code == "transcode_failed"
    assert "encoder exploded" in result.problem.message
    assert result.output_path is not None and result.output_path.suffix == ".wav"
    assert not list((tmp_path / "out").glob("*.mp3")) and not list((tmp_path / "out").glob(".*"))


def test_header_only_mixmonitor_file_is_empty(tmp_path: Path) -> None:
    # MixMonitor leaves a 44-byte WAV for unanswered calls (fixtures README, §CDR and recording).
    src = write_wav(tmp_path / "unanswered.wav", [array("h")])
    assert src.stat().st_size == 44
    result = process_recording(src, tmp_path / "out", keep_original=True)
    assert result.status == "empty"
    assert result.problem is not None and result.problem.code == "empty"
    assert result.metrics is None and result.output_path is None
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "corrupt"),
        (b"RIFF\x00\x00", "corrupt"),
        (b"not a wav file at all, just text" * 10, "corrupt"),
        (b"\x00" * 100, "corrupt"),
        # Found by fuzzing: a chunk size past the end makes the stdlib wave parser raise RuntimeError.
        (b"RIFF\xe4\xbc\x00\x00WAVEfmq \x0e\xfd\x00\x00", "corrupt"),
    ],
)
def test_corrupt_files_are_problems_not_exceptions(tmp_path: Path, content: bytes, code: str) -> None:
    src = tmp_path / "bad.wav"
    src.write_bytes(content)
    result = process_recording(src, tmp_path / "out", keep_original=False)
    assert result.status == "corrupt"
    assert result.problem is not None and result.problem.code == code


def test_truncated_data_uses_what_is_there(tmp_path: Path) -> None:
    # MixMonitor killed mid-write: the header promises more frames than the file holds.
    src = write_wav(tmp_path / "full.wav", [tone(1.0)])
    cut = tmp_path / "cut.wav"
    cut.write_bytes(src.read_bytes()[: 44 + 8001])  # 4000.5 frames: the odd byte is dropped
    result = process_recording(cut, tmp_path / "out", keep_original=False, ffmpeg=None)
    assert result.status == "processed" and result.metrics is not None
    assert result.metrics.duration_s == 0.5


def test_unsupported_formats(tmp_path: Path) -> None:
    src = tmp_path / "hifi.wav"
    with wave.open(str(src), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(44100)
        wav.writeframes(bytes(4410 * 2))
    result = process_recording(src, tmp_path / "out", keep_original=False)
    assert result.status == "corrupt" and result.problem is not None
    assert result.problem.code == "unsupported" and "44100" in result.problem.message
    ulaw = tmp_path / "ulaw.wav"  # format tag 7 (mu-law), which the stdlib wave module cannot read
    header = SAMPLE.read_bytes()[:44]
    ulaw.write_bytes(header[:20] + (7).to_bytes(2, "little") + header[22:] + bytes(100))
    assert process_recording(ulaw, tmp_path / "out", keep_original=False).status == "corrupt"


def test_missing_source(tmp_path: Path) -> None:
    result = process_recording(tmp_path / "nope.wav", tmp_path / "out", keep_original=False)
    assert result.status == "corrupt" and result.problem is not None and result.problem.code == "missing"


# --- storage ----------------------------------------------------------------------------------------


def test_local_storage_round_trip(tmp_path: Path) -> None:
    storage: RecordingStorage = LocalStorage(tmp_path / "store")
    key = "2026/11/22/testpbx-1795350069.0.mp3"
    assert not storage.exists(key)
    storage.put(key, SAMPLE)
    assert storage.exists(key)
    assert storage.size(key) == SAMPLE.stat().st_size
    with storage.open(key) as fh:
        assert fh.read() == SAMPLE.read_bytes()
    storage.put(key, SAMPLE)  # replacing is allowed
    assert storage.delete(key) is True
    assert storage.delete(key) is False
    assert not storage.exists(key)
    with pytest.raises(FileNotFoundError):
        storage.open(key)
    with pytest.raises(FileNotFoundError):
        storage.size(key)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../../etc/passwd",
        "a/../../etc/passwd",
        "a/./b",
        "/etc/passwd",
        "//server/share",
        "a\\..\\..\\windows",
        "rec\x00.wav",
        "C:/x.wav",
        ".hidden",
        "a/.part",
        "a//b",
        "a/",
        "名字.wav",
        "x" * 300,
        "a b.wav",
        "a/b/c/d/e/f/g/h/i/j.wav",
    ],
)
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(InvalidStorageKey):
        storage.put(key, SAMPLE)
    with pytest.raises(InvalidStorageKey):
        storage.exists(key)
    with pytest.raises(InvalidStorageKey):
        validate_key(key)


def test_failed_put_leaves_nothing_behind(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    with pytest.raises(FileNotFoundError):
        storage.put("a/b.wav", tmp_path / "missing.wav")
    assert not storage.exists("a/b.wav")
    assert list((tmp_path / "store" / "a").iterdir()) == []


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to(outside)
    storage = LocalStorage(root)
    with pytest.raises(InvalidStorageKey):
        storage.put("escape/x.wav", SAMPLE)
    assert not list(outside.iterdir())


# --- benchmark smoke run -----------------------------------------------------------------------------


def test_bench_smoke_run(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.recordings import main

    assert main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "processed 4 files" in out and "0 failed" in out and "x real time per core" in out
