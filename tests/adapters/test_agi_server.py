"""AgiServer + AgiChannel against the recorded Asterisk 20 FastAGI transcripts, replayed over real TCP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from ivr.agi import AgiChannel, AgiEnv, AgiReply, AgiServer, ChannelHungUp
from ivr.agi.protocol import AgiCommandError, AgiCommandTimeout, AgiProtocolError
from ivr.agi.variables import (
    EXPR_CALLERID_ALL,
    EXPR_CALLERID_NAME,
    EXPR_CALLERID_NUM,
    SCREEN_REASONS,
    SCREEN_RESULT,
)
from tests.adapters.agi_replay import (
    ReplayMismatch,
    ReplayOutcome,
    env_lines,
    recv,
    replay_agi,
    send,
    with_script,
)
from tests.asterisk_fixtures import TranscriptLine, agi_transcripts

Script = Callable[[AgiEnv, AgiChannel, list[Any]], Awaitable[None]]


@dataclass
class Run:
    """What one replayed call produced: handler results in order, the env and channel it got, errors."""

    outcome: ReplayOutcome
    results: list[Any] = field(default_factory=list)
    envs: list[AgiEnv] = field(default_factory=list)
    channels: list[AgiChannel] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


async def run_call(
    transcript: str | list[TranscriptLine], script: Script, *, byte_by_byte: bool = False, **server_kw: Any
) -> Run:
    run = Run(outcome=ReplayOutcome())

    async def handler(env: AgiEnv, channel: AgiChannel) -> None:
        run.envs.append(env)
        run.channels.append(channel)
        try:
            await script(env, channel, run.results)
        except BaseException as exc:  # the server swallows handler errors by design: keep them for the test
            run.errors.append(exc)
            raise

    server_kw.setdefault("session_deadline_s", 10.0)
    async with AgiServer({"screen": handler}, port=0, **server_kw) as server:
        run.outcome = await replay_agi(server.port, transcript, byte_by_byte=byte_by_byte)
    return run


# ------------------------------------------------------------ one handler per fixture


async def allow_script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
    out.append(await ch.answer())
    out.append(await ch.stream_file("hello-world"))
    out.append(await ch.get_data("custom/press-1", 3000, 1))
    out.append(await ch.set_variable(SCREEN_RESULT, "allow"))


async def caller_hangs_up_script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
    out.append(await ch.answer())
    out.append(await ch.stream_file("tt-monkeys"))
    try:
        await ch.wait_for_digit(5000)
    except ChannelHungUp as exc:
        out.append(exc)
    out.append(ch.hung_up)
    with pytest.raises(ChannelHungUp):  # refused locally: nothing goes on the wire (the replay checks)
        await ch.stream_file("tt-monkeys")
    out.append(await ch.get_variable(SCREEN_RESULT))
    out.append(await ch.set_variable(SCREEN_RESULT, "allow"))
    out.append(await ch.verbose("still here after hangup", 1))


async def dtmf_script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
    out.append(await ch.answer())
    out.append(await ch.wait_for_digit(10000))
    out.append(await ch.get_data("custom/press-1", 6000, 4))
    out.append(await ch.set_variable(SCREEN_RESULT, "allow"))


async def reject_script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
    with pytest.raises(AgiCommandError):  # a second command smuggled in a value never leaves
        await ch.set_variable(SCREEN_REASONS, "x\nEXEC Dial SIP/evil")
    out.append(await ch.set_variable(SCREEN_RESULT, "deny"))
    out.append(await ch.hangup())
    out.append(ch.hung_up)
    await asyncio.sleep(0.05)  # the recorder waited 0.5 s too, so the HANGUP notice is in first
    out.append(await ch.get_variable(SCREEN_RESULT))


async def variables_script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
    out.append(await ch.get_variable(SCREEN_RESULT))
    out.append(await ch.get_variable("NO_SUCH_VARIABLE"))
    out.append(await ch.get_full_variable("${CHANNEL}|${EXTEN}|${CONTEXT}"))
    out.append(await ch.set_variable(SCREEN_RESULT, "deny"))
    out.append(await ch.hangup())


async def hostile_script(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
    for expression in (EXPR_CALLERID_ALL, EXPR_CALLERID_NAME, EXPR_CALLERID_NUM):
        out.append(await ch.get_full_variable(expression))
    out.append(await ch.set_variable(SCREEN_RESULT, "deny"))
    out.append(await ch.hangup())


SCRIPTS: dict[str, Script] = {
    "agi_allow": allow_script,
    "agi_caller_hangs_up": caller_hangs_up_script,
    "agi_dtmf": dtmf_script,
    "agi_reject": reject_script,
    "agi_variables": variables_script,
    **{name: hostile_script for name in agi_transcripts() if name.startswith("agi_hostile_")},
}


def test_every_agi_fixture_has_a_script() -> None:
    assert set(SCRIPTS) == set(agi_transcripts())


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("byte_by_byte", [False, True], ids=["recorded-chunks", "byte-by-byte"])
async def test_fixture_replays_exactly(name: str, byte_by_byte: bool) -> None:
    run = await run_call(name, SCRIPTS[name], byte_by_byte=byte_by_byte)
    assert run.errors == []
    assert run.outcome.half_closed
    assert len(run.envs) == 1 and run.envs[0].script == "screen"
    # The drain after half-close consumed Asterisk's final HANGUP notice (every fixture ends with one).
    assert run.channels[0].hung_up


async def test_allow_results() -> None:
    run = await run_call("agi_allow", allow_script)
    answer, stream, data, setvar = run.results
    env = run.envs[0]
    assert (env.callerid, env.calleridname, env.extension, env.args) == (
        "5551234",
        "SIPp Caller",
        "2000",
        ("2000",),
    )
    assert (env.rdnis, env.accountcode, env.priority, env.uniqueid) == ("", "", 3, "testpbx-1795350433.0")
    assert answer.ok and answer.result == "0"
    assert stream.endpos == 11234 and stream.digit is None
    assert data.timed_out and data.result == ""
    assert setvar.result == "1" and run.channels[0].variables_set == {SCREEN_RESULT}


async def test_dtmf_digits() -> None:
    run = await run_call("agi_dtmf", dtmf_script)
    _, digit, data, _ = run.results
    assert digit.result == "49" and digit.digit == "1"
    assert data.result == "5" and not data.timed_out  # `#` ended input and is not included


async def test_caller_hangs_up_511_and_dead_channel_commands() -> None:
    run = await run_call("agi_caller_hangs_up", caller_hangs_up_script)
    _, stream, hung, hung_flag, getvar, setvar, verbose = run.results
    assert stream.result == "-1" and stream.endpos == 12160
    assert isinstance(hung, ChannelHungUp) and hung.reply is not None and hung.reply.code == 511
    assert hung_flag is True
    assert (getvar.result, getvar.data) == ("1", "unknown")
    assert setvar.ok and verbose.ok


async def test_reject_hangup_then_get_variable() -> None:
    run = await run_call("agi_reject", reject_script)
    setvar, hangup, hung_flag, getvar = run.results
    assert setvar.ok and hangup.result == "1" and hung_flag is True
    assert getvar.data == "deny"


async def test_variables_query_args_and_unset_variable() -> None:
    run = await run_call("agi_variables", variables_script)
    env = run.envs[0]
    assert env.script == "screen" and dict(env.query) == {"trunk": "carrier1", "campaign": "spring"}
    assert env.args == ("3100", "second arg", "key=value;x=1") and env.priority == 1
    unset, missing, full, _, _ = run.results
    assert unset.result == "0" and missing.result == "0"
    assert full.data == "SIP/sipp-uac-0000000a|3100|inbound"


HOSTILE = {  # callerid, calleridname in the env; ${CALLERID(num)} from GET FULL VARIABLE (README table)
    "agi_hostile_callerid_quote_semicolon": ("+8610086", 'Evil"Name; DROP TABLE calls;--', "+8610086"),
    "agi_hostile_callerid_pct_crlf": (
        "5550100\r\nagi_extension",
        "Evil%0d%0aagi_network: yes",
        "5550100\r\nagi_extension",
    ),
    "agi_hostile_callerid_zeros": ("00000000", "", "00000000"),
    "agi_hostile_callerid_anonymous": ("anonymous", "Anonymous", "anonymous"),
    "agi_hostile_callerid_empty_user": ("", "", ""),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_caller_ids(name: str) -> None:
    run = await run_call(name, hostile_script)
    env = run.envs[0]
    callerid, calleridname, num = HOSTILE[name]
    assert (env.callerid, env.calleridname) == (callerid, calleridname)
    assert (env.extension, env.context, env.script, env.args) == ("2000", "inbound", "screen", ("2000",))
    assert env.suspicious == (name == "agi_hostile_callerid_pct_crlf")
    _, _, num_reply, setvar, hangup = run.results
    assert num_reply.data == num  # one reply, even across the raw CR LF: the reader stayed in step
    assert setvar.result == "1" and hangup.result == "1"


# ------------------------------------------------------------ failures, deadline, auth


async def test_deadline_closes_the_call_in_time(caplog: pytest.LogCaptureFixture) -> None:
    async def sleepy(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        await asyncio.sleep(30)

    started = time.monotonic()
    run = await run_call(env_lines("agi_allow"), sleepy, session_deadline_s=0.3)
    assert run.outcome.half_closed and run.outcome.commands == []
    assert time.monotonic() - started < 1.5
    assert any(
        "testpbx-1795350433.0" in r.getMessage() and "deadline" in r.getMessage() for r in caplog.records
    )


async def test_failure_sets_the_fail_result_before_returning_to_the_dialplan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        raise RuntimeError("screening backend down")

    script = [
        *env_lines("agi_allow"),
        send("SET VARIABLE SCREEN_RESULT allow\n"),
        recv("200 result=1\n"),
        recv("HANGUP\n"),
    ]
    caplog.set_level(logging.INFO, logger="ivr.agi")
    run = await run_call(script, broken, fail_screen_result="allow")
    assert run.outcome.commands == [b"SET VARIABLE SCREEN_RESULT allow\n"]
    assert any(r.exc_info and "testpbx-1795350433.0" in r.getMessage() for r in caplog.records)


async def test_fail_result_not_sent_when_the_handler_already_decided() -> None:
    async def decides_then_fails(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        await ch.set_variable(SCREEN_RESULT, "deny")
        raise RuntimeError("late failure")

    script = [*env_lines("agi_reject"), send("SET VARIABLE SCREEN_RESULT deny\n"), recv("200 result=1\n")]
    run = await run_call(script, decides_then_fails, fail_screen_result="allow")
    assert run.outcome.commands == [b"SET VARIABLE SCREEN_RESULT deny\n"]


async def test_command_timeout_discards_the_late_reply() -> None:
    async def impatient(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        with pytest.raises(AgiCommandTimeout):
            await ch.command("ANSWER", timeout_s=0.2)
        out.append(await ch.get_variable("CC_ATTEMPT_ID"))

    script = [
        *env_lines("agi_allow"),
        send("ANSWER\n"),  # no reply in time
        send("GET VARIABLE CC_ATTEMPT_ID\n"),
        recv("200 result=0\n"),  # the late ANSWER reply must not be taken for GET VARIABLE's
        recv("200 result=1 (attempt-7)\n"),
    ]
    run = await run_call(script, impatient)
    assert run.errors == [] and run.results[0].data == "attempt-7"


async def test_unsolicited_lines_make_the_channel_unusable() -> None:
    async def handler(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        await asyncio.sleep(0.05)
        with pytest.raises(AgiProtocolError):
            await ch.get_variable(SCREEN_RESULT)

    # Env text after the terminator (a bare-LF injection could cause this): nothing asked for it.
    script = [*env_lines("agi_allow"), recv("agi_extension: 666\n200 result=1 (allow)\n")]
    run = await run_call(script, handler)
    assert run.errors == [] and run.outcome.commands == []


async def test_unknown_route_closes_without_commands(caplog: pytest.LogCaptureFixture) -> None:
    called: list[AgiEnv] = []

    async def handler(env: AgiEnv, ch: AgiChannel) -> None:
        called.append(env)

    async with AgiServer({"screen": handler}, port=0, session_deadline_s=5) as server:
        outcome = await replay_agi(server.port, with_script(env_lines("agi_allow"), "other"))
    assert outcome.half_closed and outcome.commands == [] and called == []
    assert any("no route" in r.getMessage() for r in caplog.records)


def secret_env(query: str) -> list[TranscriptLine]:
    return with_script(env_lines("agi_variables"), f"screen?trunk=carrier1&{query}".rstrip("&"))


@pytest.mark.parametrize("query", ["secret=wrong", "", "secret=", "secret=s3cr3t-but-longer"])
async def test_wrong_or_missing_secret_is_refused(query: str, caplog: pytest.LogCaptureFixture) -> None:
    async def handler(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        out.append(env)

    run = await run_call(secret_env(query), handler, shared_secret="s3cr3t")
    assert run.outcome.half_closed and run.outcome.commands == [] and run.results == []
    assert any("wrong secret" in r.getMessage() for r in caplog.records)
    assert not any("s3cr3t" in r.getMessage() for r in caplog.records)


async def test_right_secret_is_accepted_and_hidden_from_the_handler() -> None:
    async def handler(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        out.append(env)

    run = await run_call(secret_env("secret=s3cr3t"), handler, shared_secret="s3cr3t")
    (env,) = run.results
    assert dict(env.query) == {"trunk": "carrier1"}
    assert "s3cr3t" not in env.request and "s3cr3t" not in repr(dict(env.raw))


async def test_source_not_allowed_is_refused_before_reading() -> None:
    called: list[AgiEnv] = []

    async def handler(env: AgiEnv, ch: AgiChannel) -> None:
        called.append(env)

    async with AgiServer(
        {"screen": handler}, port=0, session_deadline_s=5, allowed_sources=frozenset({"10.9.8.0/24"})
    ) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            assert await asyncio.wait_for(reader.read(), 2) == b""
        except ConnectionResetError:
            pass
        finally:
            writer.close()
    assert called == []


async def test_allowed_source_network_is_accepted() -> None:
    run = await run_call("agi_allow", allow_script, allowed_sources=frozenset({"127.0.0.0/8"}))
    assert run.errors == [] and len(run.results) == 4


async def test_replay_detects_a_wrong_command() -> None:
    async def wrong(env: AgiEnv, ch: AgiChannel, out: list[Any]) -> None:
        await ch.command("NOOP", needs_live=False, timeout_s=0.5)

    with pytest.raises(ReplayMismatch):
        await run_call("agi_allow", wrong)


async def test_300_concurrent_sessions() -> None:
    sessions = 300
    inside = 0
    all_inside = asyncio.Event()
    digits: list[AgiReply] = []

    async def handler(env: AgiEnv, ch: AgiChannel) -> None:
        nonlocal inside
        inside += 1
        if inside == sessions:
            all_inside.set()
        # Every call waits until all 300 are in their handler at once: proof nothing blocks.
        await asyncio.wait_for(all_inside.wait(), 20)
        replies: list[Any] = []
        await dtmf_script(env, ch, replies)
        digits.append(replies[1])

    started = time.monotonic()
    async with AgiServer({"screen": handler}, port=0, session_deadline_s=30) as server:
        outcomes = await asyncio.gather(
            *(replay_agi(server.port, "agi_dtmf", io_timeout_s=25) for _ in range(sessions))
        )
    assert all(o.half_closed and len(o.commands) == 4 for o in outcomes)
    assert len(digits) == sessions and {reply.digit for reply in digits} == {"1"}
    assert time.monotonic() - started < 20
