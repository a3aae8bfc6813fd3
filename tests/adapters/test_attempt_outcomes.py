"""Every recorded Originate transcript ends in the outcome a person reading it would give (table-driven).

The transcripts are parsed by the real AMI parser, converted to typed events and fed to the attempt
tracker in recorded order, so ordering quirks (failed OriginateResponse after the Hangups, the originate
leg's misleading DialEnd) are exercised exactly as Asterisk 20 produced them.
"""

from __future__ import annotations

import pytest

from dialer.ami.events import to_event
from dialer.ami.protocol import AmiParser
from dialer.attempts.outcome import Outcome
from dialer.attempts.tracker import AttemptFinished, AttemptTracker, AttemptUpdate
from tests.asterisk_fixtures import load_transcript


def _originates(name: str) -> list[dict[str, str]]:
    actions = []
    for line in load_transcript(name):
        if line.direction == "send" and line.data.startswith("Action: Originate"):
            fields: dict[str, str] = {}
            for row in line.data.split("\r\n"):
                key, sep, value = row.partition(": ")
                if sep and key not in fields:
                    fields[key] = value
            actions.append(fields)
    return actions


def replay(name: str) -> tuple[list[AttemptUpdate], AttemptTracker]:
    """Feed a transcript through parser → typed events → tracker; return every update."""
    tracker = AttemptTracker()
    for fields in _originates(name):
        attempt_id = fields["Variable"].split("=", 1)[1]
        ids = [fields[k] for k in ("ChannelId", "OtherChannelId") if k in fields]
        tracker.expect(attempt_id, fields["ActionID"], at=0.0, channel_ids=ids)
    parser = AmiParser()
    updates: list[AttemptUpdate] = []
    for line in load_transcript(name):
        if line.direction != "recv":
            continue
        for message in parser.feed(line.data.encode()):
            if message.kind == "event":
                updates.extend(tracker.feed(to_event(message), line.t))
    return updates, tracker


CASES: list[tuple[str, dict[str, tuple[Outcome, int | None]]]] = [
    ("originate_answered", {"attempt-123": (Outcome.ANSWERED, 16)}),
    ("originate_answered_sip_direct", {"attempt-144": (Outcome.ANSWERED, 16)}),
    ("originate_answered_channelid", {"attempt-138": (Outcome.ANSWERED, 16)}),
    ("originate_busy", {"attempt-124": (Outcome.BUSY, 17)}),
    ("originate_busy_sip_direct", {"attempt-140": (Outcome.BUSY, 17)}),
    ("originate_busy_channelid", {"attempt-137": (Outcome.BUSY, 17)}),
    ("originate_no_answer", {"attempt-125": (Outcome.NO_ANSWER, 19)}),
    ("originate_no_answer_dial_timeout", {"attempt-126": (Outcome.NO_ANSWER, 16)}),
    ("originate_no_answer_sip_direct", {"attempt-141": (Outcome.NO_ANSWER, 19)}),
    ("originate_rejected", {"attempt-127": (Outcome.REJECTED, 21)}),
    ("originate_rejected_sip_direct", {"attempt-143": (Outcome.REJECTED, 21)}),
    ("originate_far_end_hangs_up_while_ringing", {"attempt-131": (Outcome.REJECTED, 21)}),
    ("originate_congestion", {"attempt-128": (Outcome.CONGESTION, 34)}),
    ("originate_congestion_sip_direct", {"attempt-142": (Outcome.CONGESTION, 34)}),
    ("originate_unreachable", {"attempt-129": (Outcome.UNREACHABLE, None)}),
    ("originate_unreachable_local", {"attempt-130": (Outcome.UNREACHABLE, 20)}),
    ("originate_client_hangup", {"attempt-132": (Outcome.ANSWERED, 16)}),
    ("dtmf_events", {"attempt-133": (Outcome.ANSWERED, 16)}),
    ("queue_call", {"attempt-300": (Outcome.ANSWERED, 16)}),
]


@pytest.mark.parametrize(("name", "expected"), CASES, ids=[c[0] for c in CASES])
def test_fixture_outcome(name: str, expected: dict[str, tuple[Outcome, int | None]]) -> None:
    updates, tracker = replay(name)
    finished = {u.attempt_id: u for u in updates if isinstance(u, AttemptFinished)}
    actual_ids = {fields["Variable"].split("=", 1)[1] for fields in _originates(name)}
    assert actual_ids == set(expected), "test table out of step with the fixture's attempt ids"
    got = {aid: (f.outcome, f.hangup_cause) for aid, f in finished.items()}
    assert got == expected
    assert tracker.open_attempts == []


def test_failed_originate_response_after_hangups_still_finishes_once() -> None:
    updates, _ = replay("originate_busy")
    assert [type(u).__name__ for u in updates] == ["AttemptFinished"]


def test_answered_attempt_reports_answer_before_finish_and_recording() -> None:
    updates, _ = replay("originate_answered")
    kinds = [type(u).__name__ for u in updates]
    assert kinds == ["AttemptAnswered", "AttemptFinished"]
    finished = updates[-1]
    assert isinstance(finished, AttemptFinished)
    assert finished.recording.endswith(".wav")
    assert finished.answered_at is not None and finished.at > finished.answered_at


def test_channelid_attempt_keeps_our_ids() -> None:
    updates, _ = replay("originate_answered_channelid")
    finished = next(u for u in updates if isinstance(u, AttemptFinished))
    assert finished.linkedid == "attempt-138-a"


def test_burst_every_attempt_correlated_by_action_id() -> None:
    updates, tracker = replay("burst_events")
    finished = [u for u in updates if isinstance(u, AttemptFinished)]
    assert len(finished) == 20
    assert {f.attempt_id for f in finished} == {f"attempt-b{n:02d}" for n in range(1, 21)}
    assert all(f.outcome is Outcome.ANSWERED for f in finished)
    assert tracker.open_attempts == []


def test_unicode_and_core_show_channels_calls_finish() -> None:
    for name, count in (("unicode_callerid", 2), ("core_show_channels", 3)):
        updates, tracker = replay(name)
        finished = [u for u in updates if isinstance(u, AttemptFinished)]
        assert len(finished) == count, name
        assert tracker.open_attempts == []


def test_events_off_leaves_attempt_open_until_swept() -> None:
    # With `Events: off` no OriginateResponse comes back (fixture events_off): the attempt must not be
    # guessed finished; the engine's sweep ends it explicitly.
    updates, tracker = replay("events_off")
    assert updates == []
    assert tracker.open_attempts == ["attempt-134"]
    swept = tracker.sweep(now=1000.0, max_age_s=120.0)
    assert [(u.attempt_id, u.outcome) for u in swept if isinstance(u, AttemptFinished)] == [
        ("attempt-134", Outcome.LOST_ON_RECONNECT)
    ]
