"""The sandbox's inbound caller: byte-for-byte Asterisk 20 FastAGI against raw sockets and our AgiServer.

Two halves: (1) a raw TCP "FastAGI server" plays each fixture's commands to the sandbox caller and
requires the env block and every reply byte to match what Asterisk sent; (2) our real ivr.agi AgiServer
with small test handlers (not the product screening handler) receives sandbox calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from dialer.sandbox.agi_caller import (
    CallerBehaviour,
    InboundCall,
    InboundResult,
    format_env,
    parse_args,
    place_inbound_call,
    run_mixed_stream,
)
from ivr.agi import AgiChannel, AgiEnv, AgiReply, AgiServer
from tests.adapters.agi_replay import split_transcript
from tests.asterisk_fixtures import load_transcript

FAST = 0.01  # 1 s of call time = 10 ms
SECRET = "s3cret-token"
TestScript = Callable[[AgiEnv, AgiChannel, list[Any]], Awaitable[None]]


# ------------------------------------------------------------ fixtures as calls


def fixture_env(name: str) -> tuple[bytes, dict[str, str]]:
    """The fixture's env block bytes and its values (split on LF before a key, so CR LF stays in a value)."""
    prologue, _ = split_transcript(load_transcript(name))
    block = b"".join(prologue)
    text = block.decode("utf-8").removesuffix("\n\n")
    values = dict(part.partition(": ")[::2] for part in re.split(r"\n(?=agi_[a-z0-9_]+: )", text))
    return block, values


def call_from_env(values: dict[str, str]) -> tuple[InboundCall, dict[str, Any]]:
    """The InboundCall (and place_inbound_call options) that reproduce a fixture's env."""

    def unknown(key: str) -> str:
        return "" if values[key] == "unknown" else values[key]

    call = InboundCall(
        caller_id=unknown("agi_callerid"),
        caller_name=unknown("agi_calleridname"),
        called=values["agi_dnid"],
        uniqueid=values["agi_uniqueid"],
        channel=values["agi_channel"],
        rdnis=unknown("agi_rdnis"),
        context=values["agi_context"],
        priority=int(values["agi_priority"]),
    )
    script, _, query = values["agi_network_script"].partition("?")
    options: dict[str, Any] = {
        "script": script,
        "query": dict(pair.split("=", 1) for pair in query.split("&")) if query else {},
        "args": tuple(values[f"agi_arg_{n}"] for n in range(1, 10) if f"agi_arg_{n}" in values),
    }
    return call, options


ENV_FIXTURES = [
    "agi_allow",
    "agi_variables",
    "agi_hostile_callerid_pct_crlf",
    "agi_hostile_callerid_empty_user",
    "agi_hostile_callerid_quote_semicolon",
    "agi_hostile_callerid_zeros",
    "agi_hostile_callerid_anonymous",
]


@pytest.mark.parametrize("name", ENV_FIXTURES)
def test_env_block_is_byte_identical_to_asterisk(name: str) -> None:
    block, values = fixture_env(name)
    call, options = call_from_env(values)
    assert format_env(call, host="127.0.0.1", port=4573, **options) == block


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ('STREAM FILE hello-world ""', ["STREAM", "FILE", "hello-world", ""]),
        ('VERBOSE "still here after hangup" 1', ["VERBOSE", "still here after hangup", "1"]),
        ("GET FULL VARIABLE ${CHANNEL}|${EXTEN}", ["GET", "FULL", "VARIABLE", "${CHANNEL}|${EXTEN}"]),
        (r'SET VARIABLE X "a \"q\" \\ b"', ["SET", "VARIABLE", "X", r'a "q" \ b']),
        ("GET  DATA\tp 10", ["GET", "DATA", "p", "10"]),
    ],
)
def test_parse_args_like_res_agi(line: str, argv: list[str]) -> None:
    assert parse_args(line) == argv


# ------------------------------------------------------------ raw server replaying fixture commands


@dataclass
class RawSession:
    env: bytes = b""
    stream: bytearray = field(default_factory=bytearray)


async def drive_raw(commands: list[bytes], place: Callable[[int], Awaitable[InboundResult]]) -> RawSession:
    """A bare FastAGI server: read the env, send each command after the previous reply, half-close."""
    session = RawSession()
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session.env = await reader.readuntil(b"\n\n")
        for command in commands:
            writer.write(command)
            await writer.drain()
            while (line := await reader.readline()) == b"HANGUP\n":
                session.stream += line
            session.stream += line
        writer.write_eof()
        session.stream += await reader.read()
        writer.close()
        done.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        result = await place(port)
        await asyncio.wait_for(done.wait(), 5)
    assert result.error is None
    return session


REPLAY: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "agi_allow": ({}, {}),
    # The caller's BYE must land inside the 16 s prompt even on a loaded machine: 1 s = 50 ms here.
    "agi_caller_hangs_up": ({"hangs_up_after_s": 2.0}, {"prompt_s": 16.0, "time_scale": 0.05}),
    "agi_reject": ({}, {}),
    "agi_variables": ({}, {"dialplan_variables": {}}),  # a test line without Set(SCREEN_RESULT=unknown)
    "agi_hostile_callerid_pct_crlf": ({}, {}),
    "agi_hostile_callerid_empty_user": ({}, {}),
    "agi_hostile_callerid_quote_semicolon": ({}, {}),
    "agi_hostile_callerid_zeros": ({}, {}),
    "agi_hostile_callerid_anonymous": ({}, {}),
}


def normalise(data: bytes) -> bytes:
    return re.sub(rb"endpos=\d+", b"endpos=N", data)


@pytest.mark.parametrize("name", sorted(REPLAY))
async def test_replies_match_the_fixture_byte_stream(name: str) -> None:
    behaviour_kw, place_kw = REPLAY[name]
    block, values = fixture_env(name)
    call, options = call_from_env(values)
    call = dataclasses.replace(call, behaviour=CallerBehaviour(**behaviour_kw))
    _, steps = split_transcript(load_transcript(name))
    session = await drive_raw(
        [step.expected for step in steps],
        lambda port: place_inbound_call(
            call, host="127.0.0.1", port=port, **{"time_scale": FAST, **options, **place_kw}
        ),
    )
    port = re.search(rb"agi://127\.0\.0\.1:(\d+)/", session.env)
    assert port is not None
    assert session.env == block.replace(b"127.0.0.1:4573", b"127.0.0.1:" + port.group(1))
    expected = b"".join(chunk for step in steps for chunk in step.replies)
    assert normalise(bytes(session.stream)) == normalise(expected)


# ------------------------------------------------------------ our AgiServer with test handlers


@dataclass
class Seen:
    envs: list[AgiEnv] = field(default_factory=list)
    out: list[Any] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


async def call_server(
    script: TestScript, calls: list[InboundCall], *, concurrency: int = 1, **kw: Any
) -> tuple[Seen, list[InboundResult]]:
    seen = Seen()

    async def handler(env: AgiEnv, channel: AgiChannel) -> None:
        seen.envs.append(env)
        try:
            await script(env, channel, seen.out)
        except BaseException as exc:
            seen.errors.append(exc)
            raise

    kw.setdefault("secret", SECRET)
    kw.setdefault("time_scale", FAST)
    async with AgiServer(
        {"screen": handler}, port=0, session_deadline_s=10.0, shared_secret=SECRET, backlog=1024
    ) as server:
        results = await run_mixed_stream(
            calls, host="127.0.0.1", port=server.port, concurrency=concurrency, **kw
        )
    return seen, results


async def press_four(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
    await ch.answer()
    reply = await ch.get_data("cc/press-4", 5000, 1)
    out.append(reply)
    await ch.set_variable("SCREEN_RESULT", "allow" if reply.result == "4" else "challenge_failed")


async def nothing(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
    return None


async def test_env_arrives_parsed_with_query_and_secret_redacted() -> None:
    call = InboundCall(caller_id="+15551234567", caller_name='Jo "J" Doe', called="18005550100")
    seen, [result] = await call_server(nothing, [call])
    [env] = seen.envs
    assert (env.callerid, env.calleridname) == ("+15551234567", 'Jo "J" Doe')
    assert (env.dnid, env.extension, env.args) == ("18005550100", "18005550100", ("18005550100",))
    assert env.script == "screen" and dict(env.query) == {"trunk": "carrier1"}  # secret checked, removed
    assert env.raw["agi_network_script"] == "screen?trunk=carrier1&secret=REDACTED"
    assert env.channel == result.call.channel and env.channel.startswith("PJSIP/carrier1-")
    assert env.uniqueid == result.call.uniqueid and env.context == "inbound" and env.type == "PJSIP"
    assert not env.suspicious
    assert result.error is None and result.hung_up_by == "none" and result.replies == ["HANGUP\n"]


async def test_wrong_or_missing_secret_is_refused_by_the_server() -> None:
    calls = [InboundCall(caller_id="1", called="2000")]
    for secret in ("wrong", None):
        seen, [result] = await call_server(nothing, calls, secret=secret)
        assert seen.envs == [] and result.commands == [] and result.error is None


async def test_empty_caller_id_is_written_as_unknown() -> None:
    seen, _ = await call_server(nothing, [InboundCall(caller_id="", called="2000")])
    [env] = seen.envs
    assert env.callerid == "" and env.calleridname == ""
    assert env.raw["agi_callerid"] == "unknown"


@pytest.mark.parametrize("hostile", ["5550100\r\nagi_extension: 666", "5550100\nagi_extension: 666"])
async def test_hostile_caller_id_does_not_inject_env_keys(hostile: str) -> None:
    seen, _ = await call_server(nothing, [InboundCall(caller_id=hostile, called="2000")])
    [env] = seen.envs
    assert env.extension == "2000" and env.args == ("2000",)
    assert env.callerid.startswith("5550100") and env.suspicious


async def test_pressing_caller_robocaller_and_wrong_digit() -> None:
    calls = [
        InboundCall(caller_id="1", called="2000", behaviour=CallerBehaviour(presses="1")),
        InboundCall(caller_id="2", called="2000", behaviour=CallerBehaviour(presses=None)),
        InboundCall(
            caller_id="3", called="2000", behaviour=CallerBehaviour(presses="9", press_correct=False)
        ),
    ]
    seen, results = await call_server(press_four, calls)
    replies: dict[str, AgiReply] = {
        env.callerid: reply for env, reply in zip(seen.envs, seen.out, strict=True)
    }
    assert replies["1"].result == "4" and not replies["1"].timed_out
    assert replies["2"].timed_out and replies["2"].result == ""
    assert replies["3"].result == "9"
    assert [r.variables["SCREEN_RESULT"] for r in results] == [
        "allow",
        "challenge_failed",
        "challenge_failed",
    ]
    for result in results:
        assert result.answered and result.hung_up_by == "none" and result.error is None
        assert result.commands == [
            "ANSWER",
            "GET DATA cc/press-4 5000 1",
            f"SET VARIABLE SCREEN_RESULT {result.variables['SCREEN_RESULT']}",
        ]
        assert result.replies[-1] == "HANGUP\n"


async def test_digits_via_stream_file_escape_wait_for_digit_and_multi_digit_get_data() -> None:
    async def script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        out.append(await ch.stream_file("cc/press-2", "0123456789"))
        out.append(await ch.stream_file("cc/press-2", ""))
        out.append(await ch.wait_for_digit(5000))
        out.append(await ch.get_data("cc/enter-pin", 3000, 4))

    pin = InboundCall(caller_id="1", called="2000", behaviour=CallerBehaviour(presses="123#"))
    seen, _ = await call_server(script, [pin])
    escaped, played, waited, data = seen.out
    assert escaped.digit == "2" and escaped.endpos == 2400  # interrupted 0.3 s in
    assert played.result == "0" and played.endpos == 8000
    assert waited.digit == "2"  # the last prompt asked for 2
    assert data.result == "123" and not data.timed_out  # `#` ends input and is not included

    short = InboundCall(caller_id="1", called="2000", behaviour=CallerBehaviour(presses="12"))
    seen, _ = await call_server(script, [short])
    assert seen.out[3].result == "12" and seen.out[3].timed_out


async def test_caller_hangup_mid_prompt_gives_511_for_wait_for_digit() -> None:
    async def script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        await ch.answer()
        out.append(await ch.stream_file("cc/long-prompt"))
        out.append(await ch.command("WAIT FOR DIGIT", 5000, needs_live=False))
        out.append(await ch.get_variable("SCREEN_RESULT"))
        out.append(await ch.set_variable("SCREEN_RESULT", "abandoned"))
        out.append(await ch.verbose("still here"))

    call = InboundCall(caller_id="1", called="2000", behaviour=CallerBehaviour(hangs_up_after_s=2.0))
    seen, [result] = await call_server(script, [call], prompt_s=16.0, time_scale=0.05)
    stream, wait, get, set_, verbose = seen.out
    assert stream.result == "-1" and stream.endpos is not None and 0 < stream.endpos < 16 * 8000
    assert wait.code == 511 and "dead channel" in wait.data
    assert get.raw == "200 result=1 (unknown)" and set_.ok and verbose.ok
    assert result.hung_up_by == "caller" and result.variables == {"SCREEN_RESULT": "abandoned"}
    assert result.replies[2:4] == [
        "HANGUP\n",
        "511 Command Not Permitted on a dead channel or intercept routine\n",
    ]
    assert result.replies[-1] == "HANGUP\n" and result.replies.count("HANGUP\n") == 2


async def test_server_hangup_then_dead_channel_rules() -> None:
    async def script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        await ch.set_variable("SCREEN_RESULT", "block")
        out.append(await ch.hangup())
        out.append(await ch.command("ANSWER", needs_live=False))
        out.append(await ch.command("EXEC", "Playback", "x", needs_live=False))
        out.append(await ch.get_variable("SCREEN_RESULT"))

    seen, [result] = await call_server(script, [InboundCall(caller_id="666", called="2000")])
    hangup, answer, exec_, get = seen.out
    assert hangup.raw == "200 result=1" and answer.code == 511 and exec_.code == 511
    assert get.raw == "200 result=1 (block)"
    assert result.hung_up_by == "server" and not result.answered
    assert result.replies[:3] == ["200 result=1\n", "200 result=1\n", "HANGUP\n"]


async def test_sip_identity_variable_unknown_and_bad_commands() -> None:
    async def script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        out.append(await ch.get_variable("SIP_IDENTITY"))
        out.append(await ch.get_full_variable("${CALLERID(num)}|${EXTEN}|${NOPE}"))
        out.append(await ch.command("FLY TO MOON", needs_live=False))
        out.append(await ch.command("WAIT FOR DIGIT", needs_live=False))

    identity = "eyJhbGciOiJFUzI1NiJ9.eyJ4IjoxfQ.c2ln;info=<https://cert.example/sp.pem>;alg=ES256;ppt=shaken"
    calls = [
        InboundCall(caller_id="5551234", called="2000", identity_header=identity),
        InboundCall(caller_id="5551235", called="2000"),
    ]
    seen, _ = await call_server(script, calls)
    by_caller = {env.callerid: seen.out[i * 4 : i * 4 + 4] for i, env in enumerate(seen.envs)}
    with_id, full, unknown, usage = by_caller["5551234"]
    assert with_id.raw == f"200 result=1 ({identity})"
    assert full.raw == "200 result=1 (5551234|2000|)"
    assert unknown.raw == "510 Invalid or unknown command"
    assert usage.code == 520
    assert by_caller["5551235"][0].raw == "200 result=0"


async def test_two_hundred_concurrent_calls_complete() -> None:
    calls = [
        InboundCall(
            caller_id=f"555{n:07d}",
            called="2000",
            behaviour=CallerBehaviour(
                presses="1" if n % 3 else None, hangs_up_after_s=None if n % 7 else 0.1
            ),
        )
        for n in range(200)
    ]
    seen, results = await call_server(press_four, calls, concurrency=200, timeout_s=20.0)
    assert len(seen.envs) == 200 and len({r.call.uniqueid for r in results}) == 200
    for n, result in enumerate(results):
        assert result.error is None
        if n % 7 == 0:
            assert result.hung_up_by == "caller"
        else:
            expected = "allow" if n % 3 else "challenge_failed"
            assert result.variables == {"SCREEN_RESULT": expected} and result.hung_up_by == "none"


async def test_unreachable_server_and_session_timeout_are_reported() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    refused = await place_inbound_call(InboundCall(caller_id="1", called="2"), host="127.0.0.1", port=port)
    assert refused.error is not None and refused.commands == []

    async def slow(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        await ch.wait_for_digit(-1)  # a robocaller never presses

    _, [result] = await call_server(slow, [InboundCall(caller_id="1", called="2000")], timeout_s=0.3)
    assert result.error is not None and "0.3" in result.error
