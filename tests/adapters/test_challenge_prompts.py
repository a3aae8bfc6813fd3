"""Challenge prompts are real 8 kHz mono WAVs Asterisk can play, one per digit and language."""

from __future__ import annotations

import wave
from pathlib import Path

from ivr.challenge import DIGITS, generate_prompts, prompt_name


def test_prompts_generated_in_asterisk_format(tmp_path: Path) -> None:
    written = generate_prompts(tmp_path)
    assert len(written) == 2 * len(DIGITS)
    for lang in ("zh-CN", "en"):
        for digit in DIGITS:
            path = tmp_path / lang / f"{prompt_name(digit)}.wav"
            with wave.open(str(path), "rb") as audio:
                assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
                assert audio.getnframes() / 8000 > 1.5  # a spoken sentence, not an empty file
    assert generate_prompts(tmp_path) == []  # idempotent: valid prompts are kept
