"""Post-process one MixMonitor WAV: read it, compute metrics, transcode it for playback.

Never raises for a bad file: an empty or corrupt recording is a normal outcome of a call centre
(MixMonitor writes a 44-byte header-only WAV for every unanswered call, see the fixtures README
§CDR and recording), so it comes back as a `RecordingProblem` inside the result.

Transcoding runs ffmpeg directly rather than through pydub: pydub imports `audioop`, which warns on
import since Python 3.11 and is gone in 3.13 (PEP 594), and pydub would copy the whole file through a
temp file first. If ffmpeg is missing, the WAV is kept as is and the result says so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from array import array
from dataclasses import dataclass
from pathlib import Path

from recordings.metrics import (
    DEFAULT_SILENCE_THRESHOLD_DBFS,
    RecordingMetrics,
    compute_metrics,
    deinterleave,
)

SUPPORTED_RATES = frozenset({8000, 16000})
WAV_HEADER_BYTES = 44
TRANSCODED_FORMAT = "mp3"  # plays in every browser the agent and QA pages support
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}


@dataclass(frozen=True, slots=True)
class RecordingProblem:
    """Why a recording could not be (fully) processed."""

    code: str  # empty | corrupt | unsupported | missing | transcode_failed
    message: str


@dataclass(frozen=True, slots=True)
class ProcessedRecording:
    """Outcome of processing one file; `status` maps onto `recording.status`."""

    source: Path
    status: str  # processed | empty | corrupt
    output_path: Path | None  # the file to store for playback
    # A copy of the source WAV when keep_original was asked for and the output is not the WAV itself.
    original_path: Path | None
    transcoded_format: str | None  # None when the output is the untouched WAV
    content_type: str
    sample_rate: int
    channels: int
    metrics: RecordingMetrics | None
    problem: RecordingProblem | None = None
    note: str = ""


def process_recording(
    src: Path,
    dst_dir: Path,
    *,
    keep_original: bool,
    silence_threshold_dbfs: float = DEFAULT_SILENCE_THRESHOLD_DBFS,
    ffmpeg: str | None = "auto",  # "auto": look it up on PATH; None: do not transcode; else its path
) -> ProcessedRecording:
    """Read `src`, compute metrics and write the playback file into `dst_dir`; never raises for bad audio."""
    src = Path(src)
    try:
        pcm, rate, channels = _read_wav(src)
    except _BadFile as bad:
        status = "empty" if bad.problem.code == "empty" else "corrupt"
        return _failed(src, status, bad.problem)

    metrics = compute_metrics(
        deinterleave(pcm, channels), rate, silence_threshold_dbfs=silence_threshold_dbfs
    )
    dst_dir.mkdir(parents=True, exist_ok=True)
    original = None
    if keep_original:
        original = dst_dir / f"{src.stem}.orig.wav"
        shutil.copyfile(src, original)

    ffmpeg_path = shutil.which("ffmpeg") if ffmpeg == "auto" else ffmpeg
    if ffmpeg_path is None:
        output = _keep_wav(src, dst_dir, original)
        return _processed(
            src, output, None, None, rate, channels, metrics, None, "ffmpeg not found; kept the WAV"
        )

    output = dst_dir / f"{src.stem}.{TRANSCODED_FORMAT}"
    problem = _transcode(
        ffmpeg_path, src, output, rate=rate, channels=channels, duration_s=metrics.duration_s
    )
    if problem is not None:
        # The audio itself was fine (we just read it); keep the WAV so the call is still playable.
        output = _keep_wav(src, dst_dir, original)
        return _processed(
            src, output, None, None, rate, channels, metrics, problem, "transcoding failed; kept the WAV"
        )
    return _processed(src, output, original, TRANSCODED_FORMAT, rate, channels, metrics, None, "")


def _keep_wav(src: Path, dst_dir: Path, original: Path | None) -> Path:
    """The WAV becomes the playback file; an original copy already made is reused, not stored twice."""
    output = dst_dir / f"{src.stem}.wav"
    if original is not None:
        original.replace(output)
    else:
        shutil.copyfile(src, output)
    return output


class _BadFile(Exception):
    def __init__(self, problem: RecordingProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _read_wav(src: Path) -> tuple[array, int, int]:
    try:
        size = src.stat().st_size
    except OSError as exc:
        raise _BadFile(RecordingProblem("missing", f"cannot read {src.name}: {exc.strerror}")) from exc
    try:
        with wave.open(str(src), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            if width != 2 or channels not in (1, 2) or rate not in SUPPORTED_RATES:
                raise _BadFile(
                    RecordingProblem(
                        "unsupported",
                        f"{src.name}: {channels} ch, {8 * width}-bit, {rate} Hz is not supported",
                    )
                )
            data = wav.readframes(wav.getnframes())
    except _BadFile:
        raise
    except Exception as exc:  # any parse failure of an untrusted file means "corrupt"
        # The stdlib parser raises assorted types on damaged input: wave.Error (bad RIFF/fmt chunk, or
        # a compressed format such as mu-law, format 7), EOFError (truncated header), and, found by
        # fuzzing, a bare RuntimeError from its chunk seek when a chunk size points past the end.
        raise _BadFile(RecordingProblem("corrupt", f"{src.name} is not a readable WAV: {exc}")) from exc
    # A header that promises more frames than the file holds (MixMonitor killed mid-write) just yields
    # fewer bytes; use what is there, whole frames only.
    usable = len(data) - len(data) % (2 * channels)
    if usable == 0:
        code = "empty" if size <= WAV_HEADER_BYTES or not data else "corrupt"
        raise _BadFile(RecordingProblem(code, f"{src.name} holds no audio ({size} bytes)"))
    pcm = array("h")
    pcm.frombytes(data[:usable])
    if sys.byteorder == "big":  # WAV samples are little-endian
        pcm.byteswap()
    return pcm, rate, channels


def _transcode(
    ffmpeg_path: str, src: Path, output: Path, *, rate: int, channels: int, duration_s: float
) -> RecordingProblem | None:
    # 16 kbit/s per 8 kHz channel keeps speech clear (MPEG-2.5 layer III supports 8 kHz).
    bitrate = 16 * channels * (rate // 8000)
    partial = output.with_name(f".{output.name}.part")
    cmd = [ffmpeg_path, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src)]
    cmd += ["-vn", "-c:a", "libmp3lame", "-b:a", f"{bitrate}k", "-f", TRANSCODED_FORMAT, str(partial)]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=30 + duration_s / 5, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        partial.unlink(missing_ok=True)
        return RecordingProblem("transcode_failed", f"ffmpeg did not run: {exc}")
    if done.returncode != 0 or not partial.exists() or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        err = done.stderr.decode("utf-8", "replace").strip()[-300:]
        return RecordingProblem("transcode_failed", f"ffmpeg exited {done.returncode}: {err}")
    partial.replace(output)
    return None


def _processed(
    src: Path,
    output: Path,
    original: Path | None,
    transcoded_format: str | None,
    rate: int,
    channels: int,
    metrics: RecordingMetrics,
    problem: RecordingProblem | None,
    note: str,
) -> ProcessedRecording:
    content_type = CONTENT_TYPES[transcoded_format or "wav"]
    return ProcessedRecording(
        source=src,
        status="processed",
        output_path=output,
        original_path=original,
        transcoded_format=transcoded_format,
        content_type=content_type,
        sample_rate=rate,
        channels=channels,
        metrics=metrics,
        problem=problem,
        note=note,
    )


def _failed(src: Path, status: str, problem: RecordingProblem) -> ProcessedRecording:
    return ProcessedRecording(src, status, None, None, None, "", 0, 0, None, problem, note=problem.message)
