"""AmiClient over real TCP against recorded transcripts replayed by AmiReplayServer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dialer.ami.client import (
    AmiAuthError,
    AmiClient,
    AmiConnectionLost,
    AmiNotConnected,
    backoff_delay,
    md5_key,
)
from dialer.ami.message import AmiMessage
from dialer.ami.protocol import AmiParser
from tests.adapters.ami_replay import AmiReplayServer
from tests.asterisk_fixtures import TranscriptLine, load_transcript, recv_chunks

LIST_ACTIONS = {"CoreShowChannels", "QueueStatus", "QueueSummary"}
Fields = list[tuple[str, str]]


def make_client(server: AmiReplayServer, **overrides: Any) -> AmiClient:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": "dialer",
        "secret": "dialer-secret",
        "ping_interval": 0,
        "action_timeout": 3.0,
        "connect_timeout": 1.0,
        "reconnect_initial": 0.01,
        "reconnect_max": 0.05,
    }
    options.update(overrides)
    return AmiClient(**options)


def scripted_actions(lines: list[TranscriptLine]) -> list[tuple[str, Fields]]:
    """The actions a transcript's client sent, minus login/logoff and ActionID (the client adds its own)."""
    actions = []
    for line in lines:
        if line.direction != "send":
            continue
        headers = [tuple(h.split(": ", 1)) for h in line.data.split("\r\n") if h]
        name = headers[0][1]
        if name not in {"Login", "Challenge", "Logoff"}:
            actions.append((name, [(k, v) for k, v in headers[1:] if k != "ActionID"]))
    return actions


def drain(client: AmiClient) -> list[AmiMessage]:
    out = []
    while not client.events.empty():
        out.append(client.events.get_nowait())
    return out


def transcript_events(name: str) -> list[AmiMessage]:
    parser = AmiParser()
    return [m for c in recv_chunks(name) for m in parser.feed(c) if m.kind == "event"]


async def next_event(client: AmiClient, name: str) -> AmiMessage:
    async with asyncio.timeout(5):
        while True:
            event = await client.events.get()
            if event.name == name:
                return event


async def test_login_ok_banner_events_and_logoff() -> None:
    async with AmiReplayServer("login_ok") as server:
        client = make_client(server)
        await client.connect()
        assert client.connected and client.banner == "Asterisk Call Manager/9.0.0"
        assert (await client.events.get()).name == "FullyBooted"
        assert (await client.events.get()).name == "SuccessfulAuth"
        await client.close()
        assert not client.connected
        assert server.errors == []
        assert server.names() == ["Login", "Logoff"]
        login = server.received[0]
        assert (login.get("Username"), login.get("Secret"), login.get("Events")) == (
            "dialer",
            "dialer-secret",
            "on",
        )
        assert (login.get("ActionID") or "").split("-")[1:] == ["1", "1"]
        with pytest.raises(AmiNotConnected):
            await client.send_action("Ping")


async def test_login_bad_secret_raises_without_retrying() -> None:
    async with AmiReplayServer("login_bad_secret") as server:
        client = make_client(server, secret="wrong-secret")
        with pytest.raises(AmiAuthError, match="Authentication failed"):
            await client.connect()
        await asyncio.sleep(0.05)  # a retry loop would have reconnected by now (reconnect_initial=0.01)
        assert server.connections == 1
        assert server.names() == ["Login"]


async def test_login_md5_challenge_key() -> None:
    assert md5_key("74816173", "dialer-secret") == "c0a5d4a7b01b9972ef523bce596b843b"  # from the fixture
    async with AmiReplayServer("login_md5_challenge") as server:
        client = make_client(server, use_md5=True)
        await client.connect()
        await client.close()
        assert server.errors == []
        assert server.names() == ["Challenge", "Login", "Logoff"]
        challenge, login = server.received[:2]
        assert challenge.get("AuthType") == "MD5"
        assert login.get("AuthType") == "MD5"
        assert login.get("Key") == "c0a5d4a7b01b9972ef523bce596b843b"
        assert login.get("Secret") is None


@pytest.mark.parametrize("rechunk_seed", [None, 7])
async def test_originate_answered_correlates_queued_response_and_originate_response(
    rechunk_seed: int | None,
) -> None:
    async with AmiReplayServer("originate_answered", rechunk_seed=rechunk_seed) as server:
        client = make_client(server)
        await client.connect()
        ((name, fields),) = scripted_actions(server.lines)
        assert ("Variable", "CC_ATTEMPT_ID=attempt-123") in fields
        queued = await client.send_action(name, fields)
        assert (queued.name, queued.get("Message")) == ("Success", "Originate successfully queued")
        result = await next_event(client, "OriginateResponse")
        assert result.action_id == queued.action_id
        assert (result.get("Response"), result.get("Reason")) == ("Success", "4")
        await next_event(client, "Cdr")
        await client.close()
        assert server.errors == []
        sent = server.received[1]
        assert sent.get("ActionID") == queued.action_id
        assert sent.headers[2:] == tuple(fields)


async def test_events_reach_the_callback_in_stream_order() -> None:
    seen: list[AmiMessage] = []

    async def on_event(event: AmiMessage) -> None:
        seen.append(event)

    async with AmiReplayServer("originate_answered") as server:
        client = make_client(server, on_event=on_event)
        await client.connect()
        ((name, fields),) = scripted_actions(server.lines)
        await client.send_action(name, fields)
        await client.close()
    expected = [e.name for e in transcript_events("originate_answered")]
    assert [e.name for e in seen] == expected
    assert len(expected) > 100


async def run_script(client: AmiClient, actions: list[tuple[str, Fields]]) -> list[Any]:
    """Fire every scripted action at once, in order (the replay server waits for them in that order)."""
    calls = [
        client.send_list_action(name, fields) if name in LIST_ACTIONS else client.send_action(name, fields)
        for name, fields in actions
    ]
    return list(await asyncio.gather(*calls))


async def test_core_show_channels_list_action() -> None:
    async with AmiReplayServer("core_show_channels") as server:
        client = make_client(server)
        await client.connect()
        results = await run_script(client, scripted_actions(server.lines))
        await client.close()
        assert server.errors == []
    response, items = results[3]
    assert response.get("EventList") == "start"
    assert len(items) == 9
    assert {e.name for e in items} == {"CoreShowChannel"}
    assert {e.action_id for e in items} == {response.action_id}
    leftovers = drain(client)
    assert not any(e.name in {"CoreShowChannel", "CoreShowChannelsComplete"} for e in leftovers)
    assert [r.name for r in results[4:]] == ["Success"] * 3


async def test_queue_list_actions_including_empty_list_and_errors() -> None:
    async with AmiReplayServer("queue") as server:
        client = make_client(server)
        await client.connect()
        actions = scripted_actions(server.lines)
        results = await run_script(client, actions)
        await client.close()
        assert server.errors == []
    by_name = list(zip([a[0] for a in actions], results, strict=True))
    assert by_name[4][1].name == "Error"  # duplicate QueueAdd: "Already there"
    members = by_name[5][1][1]
    assert {e.name for e in members} >= {"QueueParams", "QueueMember"}
    empty_response, empty_items = by_name[-1][1]
    assert empty_response.name == "Success" and empty_items == []


async def test_burst_originates_correlate_by_action_id() -> None:
    async with AmiReplayServer("burst_events") as server:
        client = make_client(server)
        await client.connect()
        queued = await run_script(client, scripted_actions(server.lines))
        await client.close()
        assert server.errors == []
    responses = [e for e in drain(client) if e.name == "OriginateResponse"]
    assert len(responses) == 20
    assert {e.action_id for e in responses} == {q.action_id for q in queued}
    assert len({q.action_id for q in queued}) == 20


async def test_asterisk_restart_fails_pending_action_and_never_resends_it() -> None:
    gate = asyncio.Event()
    reconnected = asyncio.Event()

    async def on_reconnected() -> None:
        reconnected.set()

    async with AmiReplayServer("asterisk_restart", gates={"core restart now": gate}) as server:
        client = make_client(server, on_reconnected=on_reconnected)
        await client.connect()
        originate = asyncio.create_task(client.send_action("Originate", [("Channel", "Local/1@outbound")]))
        await server.wait_for_action("Originate")
        gate.set()
        with pytest.raises(AmiConnectionLost):
            await originate
        await asyncio.wait_for(reconnected.wait(), 5)
        assert client.connected and client.generation == 2
        await client.close()
        assert server.errors == []
        assert server.names() == ["Login", "Originate", "Login", "Logoff"]
        assert [a.connection for a in server.received] == [1, 1, 2, 2]
        ids = [a.get("ActionID") for a in server.received]
        assert len(set(ids)) == 4
        assert ids[2].split("-")[1] == "2"  # type: ignore[union-attr]
    assert "Shutdown" in [e.name for e in drain(client)]


async def test_connection_dropped_mid_frame() -> None:
    answered = load_transcript("originate_answered")
    prefix = answered[:7]  # banner, Login, Originate, then its response (line 5) and a Newchannel
    assert prefix[5].data.startswith("Response: Success\r\nActionID: orig-answered-1")
    lines = [*prefix, TranscriptLine(0.0, "note", "reconnected"), *load_transcript("login_ok")]
    before = [line.data.encode() for line in prefix[:5] if line.direction == "recv"]
    drop_at = sum(len(c) for c in before) + len(prefix[5].data) // 2  # in the middle of the response
    reconnected = asyncio.Event()

    async def on_reconnected() -> None:
        reconnected.set()

    async with AmiReplayServer(lines, drop_at_byte=drop_at) as server:
        client = make_client(server, on_reconnected=on_reconnected)
        await client.connect()
        ((name, fields),) = scripted_actions(answered)
        with pytest.raises(AmiConnectionLost):
            await client.send_action(name, fields)
        await asyncio.wait_for(reconnected.wait(), 5)
        await client.close()
        assert server.errors == []
        assert server.names() == ["Login", "Originate", "Login", "Logoff"]
    # Only whole messages before the cut were delivered; the half message went with the socket.
    parser = AmiParser()
    complete = [m.name for c in before for m in parser.feed(c) if m.kind == "event"]
    assert complete == ["FullyBooted", "SuccessfulAuth"]
    assert [e.name for e in drain(client)] == [*complete, "FullyBooted", "SuccessfulAuth"]


async def test_events_off_ping_split_across_reads() -> None:
    async with AmiReplayServer("events_off") as server:
        client = make_client(server, events_on=False)
        await client.connect()
        name, fields = scripted_actions(server.lines)[0]
        queued = await client.send_action(name, fields)
        pong = await client.send_action("Ping")
        await client.close()
        assert server.errors == []
        assert server.received[0].get("Events") == "off"
    assert queued.get("Message") == "Originate successfully queued"
    assert (pong.name, pong.get("Ping")) == ("Success", "Pong")
    assert pong.get("Timestamp") == "1795350413.584214"
    assert pong.action_id == server.received[2].get("ActionID")
    assert drain(client) == []


async def test_ping_timeout_drops_the_connection_and_reconnects() -> None:
    async with AmiReplayServer("login_ok", ignore_actions=frozenset({"Ping"})) as server:
        client = make_client(server, ping_interval=0.02, ping_timeout=0.05)
        await client.connect()
        async with asyncio.timeout(5):
            while server.connections < 2:
                await asyncio.sleep(0.01)
        assert "Ping" in server.names()
        assert client.generation >= 1
        await client.close()


async def test_auth_rejected_on_reconnect_stops_the_client() -> None:
    lines = [
        *load_transcript("login_ok")[:5],
        TranscriptLine(0.0, "note", "socket closed by Asterisk (recv returned 0 bytes / EOF)"),
        TranscriptLine(0.0, "note", "reconnected"),
        *load_transcript("login_bad_secret"),
    ]
    async with AmiReplayServer(lines) as server:
        client = make_client(server)
        await client.connect()
        with pytest.raises(AmiAuthError):
            await asyncio.wait_for(client.wait_closed(), 5)
        await asyncio.sleep(0.05)  # no hammering: a retry loop would reconnect within 10-50 ms
        assert server.connections == 2
        assert server.names() == ["Login", "Login"]
        with pytest.raises(AmiNotConnected):
            await client.send_action("Ping")
        await client.close()


async def test_action_with_crlf_is_refused_before_sending() -> None:
    async with AmiReplayServer("login_ok") as server:
        client = make_client(server)
        await client.connect()
        with pytest.raises(ValueError):
            await client.send_action("Originate", [("CallerID", "x\r\nChannel: SIP/evil")])
        await client.close()
        assert server.names() == ["Login", "Logoff"]


def test_backoff_grows_caps_and_jitters() -> None:
    def delay(attempt: int, rand: float = 0.5) -> float:
        return backoff_delay(attempt, initial=0.5, maximum=30.0, multiplier=2.0, jitter=0.2, rand=rand)

    assert [delay(a) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert delay(20) == 30.0
    assert delay(0, rand=0.0) == pytest.approx(0.4)
    assert delay(0, rand=0.999999) == pytest.approx(0.6, rel=1e-5)
