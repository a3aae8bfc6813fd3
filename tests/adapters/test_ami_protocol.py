"""AmiParser against every recorded AMI transcript: framing must not depend on where reads end."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.ami.message import AmiMessage, encode_action
from dialer.ami.protocol import AmiParser, AmiProtocolError
from tests.asterisk_fixtures import ami_transcripts, load_transcript, recv_chunks

TRANSCRIPTS = ami_transcripts()


def parse_chunks(chunks: list[bytes]) -> list[AmiMessage]:
    parser = AmiParser()
    out: list[AmiMessage] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    assert parser.buffered == 0
    assert parser.discarded == 0
    return out


def split_connections(name: str) -> list[list[bytes]]:
    """The recv chunks of each TCP connection of a transcript (asterisk_restart has two)."""
    streams: list[list[bytes]] = [[]]
    for line in load_transcript(name):
        if line.direction == "note" and line.data == "reconnected":
            streams.append([])
        elif line.direction == "recv":
            streams[-1].append(line.data.encode("utf-8"))
    return streams


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_real_chunks_joined_and_single_bytes_agree(name: str) -> None:
    for chunks in split_connections(name):
        stream = b"".join(chunks)
        whole = parse_chunks([stream])
        assert parse_chunks(chunks) == whole
        assert parse_chunks([stream[i : i + 1] for i in range(len(stream))]) == whole
        assert whole[0].kind == "banner" and whole[0].name == "Asterisk Call Manager/9.0.0"
        assert all(m.kind != "banner" for m in whole[1:])
        last = whole[-1]
        assert (last.kind, last.name) in {
            ("response", "Goodbye"),
            ("response", "Error"),
            ("event", "Shutdown"),
        }


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(TRANSCRIPTS), data=st.data())
def test_random_splits_give_identical_messages(name: str, data: st.DataObject) -> None:
    stream = b"".join(split_connections(name)[0])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=40)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert parse_chunks(pieces) == parse_chunks([stream])


def test_core_show_channels_list() -> None:
    messages = parse_chunks(recv_chunks("core_show_channels"))
    start = next(m for m in messages if m.kind == "response" and m.get("EventList") == "start")
    items = [m for m in messages if m.name == "CoreShowChannel"]
    complete = next(m for m in messages if m.get("EventList") == "Complete")
    assert len(items) == 9
    assert all(m.action_id == start.action_id == "csc-1" for m in items)
    assert complete.name == "CoreShowChannelsComplete"
    assert complete.get("ListItems") == "9"


def test_burst_events_originate_responses_match_action_ids() -> None:
    lines = load_transcript("burst_events")
    sent_ids = {
        line.data.split("ActionID: ", 1)[1].split("\r\n", 1)[0]
        for line in lines
        if line.direction == "send" and line.data.startswith("Action: Originate")
    }
    messages = parse_chunks(recv_chunks("burst_events"))
    responses = [m for m in messages if m.name == "OriginateResponse"]
    assert len(sent_ids) == 20
    assert len(responses) == 20
    assert {m.action_id for m in responses} == sent_ids
    queued = [m for m in messages if m.get("Message") == "Originate successfully queued"]
    assert {m.action_id for m in queued} == sent_ids
    assert len(messages) > 2000


def test_fifo_order_within_one_read() -> None:
    # wazo-amid processed one read's events in reverse; here a single read holds several messages.
    chunk = next(c for c in recv_chunks("burst_events") if c.count(b"\r\n\r\n") > 20)
    names = [m.name for m in AmiParser(expect_banner=False).feed(chunk)]
    expected = [
        line.split(b"\r\n", 1)[0].split(b": ", 1)[1].decode() for line in chunk.split(b"\r\n\r\n")[:-1]
    ]
    assert names == expected[: len(names)]
    assert len(names) == len(expected)


def test_repeated_output_headers_in_command_action() -> None:
    messages = parse_chunks(recv_chunks("command_action"))
    by_id = {m.action_id: m for m in messages if m.kind == "response"}
    assert by_id["cmd-1"].get_all("Output")[0].startswith("Asterisk 20.20.1 built by")
    peers = by_id["cmd-2"].get_all("output")
    assert len(peers) > 3 and peers[0].startswith("Name/username")
    assert by_id["cmd-3"].get_all("Output") == [
        "System uptime: 5 minutes, 4 seconds",
        "Last reload: 5 minutes, 4 seconds",
    ]
    error = by_id["cmd-4"]  # delivered in 4 separate reads
    assert error.name == "Error"
    assert error.get("Message") == "Command output follows"
    assert error.get("Output", "").startswith("No such command 'no such command here'")  # type: ignore[union-attr]


def test_unicode_callerid_names_intact() -> None:
    messages = parse_chunks(recv_chunks("unicode_callerid"))
    names = {m.get("CallerIDName") for m in messages}
    assert '客服中心 \\"VIP\\" 张三' in names  # C-escaped in channel snapshots
    assert '客服中心 "VIP" 张三' in names  # raw in OriginateResponse
    assert '王五 \\"Boss\\"' in names
    assert not any("\ufffd" in (v or "") for m in messages for _, v in m.headers)


def test_ping_split_across_reads_and_invalid_utf8_replaced() -> None:
    parser = AmiParser(expect_banner=False)
    assert parser.feed(b"Response: Success\r") == []
    assert parser.feed(b"\nActionID: p\r\nPing: Pong\r\n\r") == []
    (pong,) = parser.feed(b"\nEvent: X\r\nName: \xe7\x8e")
    assert (pong.kind, pong.name, pong.action_id, pong.get("ping")) == ("response", "Success", "p", "Pong")
    (event,) = parser.feed(b"\x8b\xff\r\n\r\n")
    assert event.get("Name") == "\u738b\ufffd"


def test_lines_without_colon_continue_the_previous_value() -> None:
    # A raw CR LF injected into CallerIDNum (README finding 4) without a colon stays with its header.
    (msg,) = AmiParser(expect_banner=False).feed(
        b"Event: Newchannel\r\nCallerIDNum: 5550100\r\nextra\r\nEmpty:\r\n\r\n"
    )
    assert msg.get("CallerIDNum") == "5550100\nextra"
    assert msg.get("Empty") == ""


def test_unknown_message_discarded_and_counted() -> None:
    parser = AmiParser(expect_banner=False)
    assert parser.feed(b"Foo: bar\r\n\r\n\r\n\r\nEvent: A\r\n\r\n") == [
        AmiMessage("event", "A", (("Event", "A"),))
    ]
    assert parser.discarded == 1


def test_oversized_message_rejected() -> None:
    parser = AmiParser(expect_banner=False, max_message_bytes=100)
    with pytest.raises(AmiProtocolError):
        parser.feed(b"Event: X\r\n" + b"A: " + b"x" * 200)


def test_message_get_is_case_insensitive_and_first_wins() -> None:
    msg = AmiMessage("event", "VarSet", (("Event", "VarSet"), ("Variable", "a"), ("variable", "b")))
    assert msg.get("VARIABLE") == "a"
    assert msg.get_all("Variable") == ["a", "b"]
    assert msg.get("Missing", "d") == "d"
    assert msg.action_id is None


def test_encode_action_keeps_order_and_refuses_crlf() -> None:
    assert encode_action("Originate", [("ActionID", "x"), ("Variable", "A=1"), ("Variable", "B=2")]) == (
        b"Action: Originate\r\nActionID: x\r\nVariable: A=1\r\nVariable: B=2\r\n\r\n"
    )
    for bad in ("5550100\r\nChannel: SIP/evil", "a\nb", "a\rb"):
        with pytest.raises(ValueError):
            encode_action("Originate", [("CallerID", bad)])
    with pytest.raises(ValueError):
        encode_action("Originate", [("Bad\r\nKey", "v")])
