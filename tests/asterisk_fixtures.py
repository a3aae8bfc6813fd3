"""Access to the recorded Asterisk 20 transcripts in ../shared/fixtures/asterisk (see its README)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FIXTURE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "asterisk"


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    t: float
    direction: str  # "recv" | "send" | "note"
    data: str


def load_transcript(name: str) -> list[TranscriptLine]:
    """Read one `<scenario>.jsonl` transcript in file order."""
    path = FIXTURE_DIR / (name if name.endswith(".jsonl") else f"{name}.jsonl")
    lines: list[TranscriptLine] = []
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            if raw.strip():
                obj = json.loads(raw)
                lines.append(TranscriptLine(t=float(obj["t"]), direction=obj["dir"], data=obj["data"]))
    return lines


def recv_chunks(name: str) -> list[bytes]:
    """The bytes Asterisk sent, one item per real recv() chunk."""
    return [line.data.encode("utf-8") for line in load_transcript(name) if line.direction == "recv"]


def ami_transcripts() -> list[str]:
    return sorted(p.stem for p in FIXTURE_DIR.glob("*.jsonl") if not p.name.startswith("agi_"))


def agi_transcripts() -> list[str]:
    return sorted(p.stem for p in FIXTURE_DIR.glob("agi_*.jsonl"))
