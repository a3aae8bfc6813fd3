"""Sample call scripts (enterprise fibre / dedicated-line sales) as `Script.body` dicts."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Final

from core.errors import ValidationFailed

SAMPLE_FILES: Final = {"zh-CN": "fiber_zh_CN.json", "en": "fiber_en.json"}


def _canonical(language: str) -> str | None:
    lang = language.strip().replace("_", "-").lower()
    if lang == "zh" or lang.startswith(("zh-cn", "zh-hans")):
        return "zh-CN"
    if lang == "en" or lang.startswith("en-"):
        return "en"
    return None


def load_sample(language: str) -> dict[str, Any]:
    """A fresh copy of the sample fibre script body for `language` ("zh-CN" or "en"; "zh_CN" works too)."""
    key = _canonical(language)
    if key is None:
        raise ValidationFailed(
            f"no sample script in {language!r}",
            details={"language": language, "available": list(SAMPLE_FILES)},
        )
    text = resources.files(__package__).joinpath(SAMPLE_FILES[key]).read_text(encoding="utf-8")
    body: dict[str, Any] = json.loads(text)
    return body
