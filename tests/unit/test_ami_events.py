"""Typed AMI events: header resolution that caller-ID injection cannot steer, and reconciliation."""

from __future__ import annotations

from dialer.ami.events import ChannelRef, Hangup, OriginateResponse, to_event
from dialer.ami.message import AmiMessage
from dialer.attempts.outcome import Outcome
from dialer.attempts.tracker import AttemptFinished, AttemptTracker


def _hangup(caller_num: str, uniqueid: str = "u-1", cause: str = "16") -> AmiMessage:
    # Header order as Asterisk 20 writes a Hangup (fixture originate_answered); a raw CR LF inside the
    # caller number splits into extra "headers" right after CallerIDNum.
    headers: list[tuple[str, str]] = [
        ("Event", "Hangup"),
        ("Channel", "SIP/trunk-00000001"),
        ("ChannelState", "6"),
        ("CallerIDNum", caller_num.split("\r\n")[0]),
    ]
    for injected in caller_num.split("\r\n")[1:]:
        key, _, value = injected.partition(": ")
        headers.append((key, value))
    headers += [
        ("CallerIDName", "x"),
        ("Context", "outbound"),
        ("Uniqueid", uniqueid),
        ("Linkedid", uniqueid),
        ("Cause", cause),
        ("Cause-txt", "Normal Clearing"),
    ]
    return AmiMessage(kind="event", name="Hangup", headers=tuple(headers))


def test_injected_headers_after_caller_id_do_not_override_authentic_ones() -> None:
    event = to_event(_hangup("5550100\r\nUniqueid: victim\r\nCause: 21\r\nChannel: SIP/evil"))
    assert isinstance(event, Hangup)
    assert event.ref.uniqueid == "u-1"
    assert event.cause == 16
    assert event.ref.channel == "SIP/trunk-00000001"
    assert event.ref.caller_num == "5550100"


def test_originate_response_unknown_uniqueid_is_empty() -> None:
    message = AmiMessage(
        "event",
        "OriginateResponse",
        (
            ("Event", "OriginateResponse"),
            ("ActionID", "a-1"),
            ("Response", "Failure"),
            ("Channel", "Local/2000@outbound"),
            ("Reason", "0"),
            ("Uniqueid", "<unknown>"),
            ("CallerIDNum", "5550100\r\nReason: 4"),
        ),
    )
    event = to_event(message)
    assert isinstance(event, OriginateResponse)
    assert (event.success, event.reason, event.uniqueid) == (False, 0, "")


def _ref(uid: str, linkedid: str, channel: str) -> ChannelRef:
    return ChannelRef(channel, uid, linkedid, 6, "", "", "", "")


def test_reconcile_keeps_live_attempts_and_ends_missing_ones() -> None:
    tracker = AttemptTracker()
    tracker.expect("att-1", "act-1", at=0.0, channel_ids=("att-1-a", "att-1-b"))
    tracker.expect("att-2", "act-2", at=0.0, channel_ids=("att-2-a", "att-2-b"))
    live = [_ref("att-1-a", "att-1-a", "Local/1@outbound-1;1"), _ref("sip-9", "att-1-a", "PJSIP/t-9")]
    updates = tracker.reconcile(live, at=5.0)
    assert [(u.attempt_id, u.outcome) for u in updates if isinstance(u, AttemptFinished)] == [
        ("att-2", Outcome.LOST_ON_RECONNECT)
    ]
    assert tracker.open_attempts == ["att-1"]
    # The surviving attempt ends when its live channels hang up, even though its OriginateResponse
    # was lost with the old connection.
    tracker.feed(Hangup(live[0], 16, ""), 9.0)
    done = tracker.feed(Hangup(live[1], 16, ""), 9.5)
    assert [type(u).__name__ for u in done] == ["AttemptFinished"]
    assert tracker.open_attempts == []


def test_originate_refused_finishes_with_error() -> None:
    tracker = AttemptTracker()
    tracker.expect("att-1", "act-1", at=0.0)
    (update,) = tracker.originate_refused("att-1", at=0.1, message="Permission denied")
    assert isinstance(update, AttemptFinished)
    assert update.outcome is Outcome.ERROR
