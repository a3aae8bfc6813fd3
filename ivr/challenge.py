"""The IVR challenge: "press <digit> to continue", which robocalls playing a recording never pass.

Prompts are generated with espeak-ng and converted with sox to what Asterisk plays natively
(8 kHz, 16-bit, mono WAV) under `<sounds>/<lang>/cc/press-<digit>.wav`; Asterisk picks the language
directory from the channel's `CHANNEL(language)`, so the AGI asks for `cc/press-<digit>` only.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROMPT_DIR = "cc"
DIGITS = "123456789"  # 0 is avoided: many handsets put it away from the others, a needless failure

_TEXT = {
    "zh-CN": ("cmn", "您好，为了确认您不是自动拨号，请按{digit}键继续。"),
    "en": ("en", "Hello. To make sure you are not an automated call, please press {digit} to continue."),
}
_ZH_DIGITS = dict(zip("0123456789", "零一二三四五六七八九", strict=True))


class PromptToolMissing(RuntimeError):
    """espeak-ng or sox is not installed (Debian packages espeak-ng and sox)."""


def prompt_name(digit: str) -> str:
    """What the AGI plays for `digit` (no extension, no language: Asterisk resolves both)."""
    return f"{PROMPT_DIR}/press-{digit}"


def pick_digit(rng: random.Random) -> str:
    """A random digit to ask for, so a replayed recording cannot know it."""
    return rng.choice(DIGITS)


def generate_prompts(sounds_dir: Path, languages: Iterable[str] = ("zh-CN", "en")) -> list[Path]:
    """Write every challenge prompt for `languages`; existing valid files are kept."""
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if espeak is None or sox is None:
        raise PromptToolMissing("challenge prompts need espeak-ng and sox")
    written = []
    for lang in languages:
        voice, template = _TEXT[lang]
        target_dir = sounds_dir / lang / PROMPT_DIR
        target_dir.mkdir(parents=True, exist_ok=True)
        for digit in DIGITS:
            target = target_dir / f"press-{digit}.wav"
            if _is_asterisk_wav(target):
                continue
            spoken = _ZH_DIGITS[digit] if lang == "zh-CN" else digit
            raw = target.with_suffix(".raw.wav")
            subprocess.run(
                [espeak, "-v", voice, "-s", "150", "-w", str(raw), template.format(digit=spoken)],
                check=True,
                capture_output=True,
                timeout=30,
            )
            subprocess.run(
                [sox, str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(target)],
                check=True,
                capture_output=True,
                timeout=30,
            )
            raw.unlink(missing_ok=True)
            written.append(target)
    return written


def _is_asterisk_wav(path: Path) -> bool:
    try:
        with wave.open(str(path), "rb") as audio:
            return (
                audio.getframerate() == 8000
                and audio.getnchannels() == 1
                and audio.getsampwidth() == 2
                and audio.getnframes() > 4000
            )
    except (OSError, EOFError, wave.Error):
        return False


@dataclass(frozen=True, slots=True)
class ChallengeResult:
    passed: bool
    tries: int
    asked: tuple[str, ...]
    answered: tuple[str, ...]
    caller_hung_up: bool = False
