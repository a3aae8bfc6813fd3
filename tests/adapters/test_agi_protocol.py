"""The pure FastAGI wire format: env parsing (incl. hostile caller IDs), reply framing, command quoting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.agi.protocol import (
    MAX_COMMAND_BYTES,
    AgiCommandError,
    AgiEnv,
    AgiEvent,
    AgiProtocolError,
    AgiReply,
    AgiStreamParser,
    BadLine,
    HangupNotice,
    format_command,
    parse_env,
    parse_reply,
    quote_arg,
)
from tests.asterisk_fixtures import agi_transcripts, load_transcript, recv_chunks


def fixture_env_block(name: str) -> bytes:
    lines = load_transcript(name)
    first_send = next(i for i, line in enumerate(lines) if line.direction == "send")
    return "".join(line.data for line in lines[:first_send] if line.direction == "recv").encode()


def feed_all(chunks: list[bytes]) -> list[AgiEvent]:
    parser = AgiStreamParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


ALLOW_ENV = fixture_env_block("agi_allow").decode()


def hostile_env(callerid_value: str) -> str:
    """agi_allow's env with the raw caller-ID value replaced (it may contain CR/LF)."""
    return ALLOW_ENV.replace("agi_callerid: 5551234\n", f"agi_callerid: {callerid_value}\n")


# ------------------------------------------------------------ env


def test_allow_env_is_typed() -> None:
    env = parse_env(fixture_env_block("agi_allow"))
    assert env.request == "agi://127.0.0.1:4573/screen" and env.network_script == "screen"
    assert env.script == "screen" and dict(env.query) == {} and env.args == ("2000",)
    assert (env.channel, env.language, env.type) == ("SIP/sipp-uac-00000000", "en", "SIP")
    assert (env.uniqueid, env.version, env.threadid) == ("testpbx-1795350433.0", "20.20.1", "140145212995264")
    assert (env.callerid, env.calleridname, env.callingpres) == ("5551234", "SIPp Caller", 0)
    assert (env.dnid, env.rdnis, env.context, env.extension, env.priority) == (
        "2000",
        "",
        "inbound",
        "2000",
        3,
    )
    assert env.accountcode == "" and env.network is True
    assert env.raw["agi_rdnis"] == "unknown" and env.raw["agi_enhanced"] == "0.0"
    assert not env.suspicious and env.suspicious_reasons == ()


def test_variables_env_query_and_args() -> None:
    env = parse_env(fixture_env_block("agi_variables"))
    assert env.script == "screen" and dict(env.query) == {"trunk": "carrier1", "campaign": "spring"}
    assert env.args == ("3100", "second arg", "key=value;x=1")


def test_args_in_numeric_order_and_query_from_request_without_network_script() -> None:
    block = (
        "agi_request: agi://h:4573/ivr/menu?a=1&b=x%20y&a=2\nagi_uniqueid: u.1\nagi_threadid: 1\n"
        + "".join(f"agi_arg_{n}: v{n}\n" for n in range(1, 12))
        + "\n"
    )
    env = parse_env(block)
    assert env.script == "ivr/menu" and dict(env.query) == {"a": "1", "b": "x y"}
    assert env.args == tuple(f"v{n}" for n in range(1, 12)) and not env.suspicious


@pytest.mark.parametrize("name", agi_transcripts())
def test_every_fixture_env_keeps_the_authentic_routing_fields(name: str) -> None:
    env = parse_env(fixture_env_block(name))
    assert env.script == "screen" and env.context == "inbound"
    assert env.extension == env.args[0] and env.extension in {"2000", "3100"}
    assert env.suspicious == (name == "agi_hostile_callerid_pct_crlf")


def test_pct_crlf_fixture_callerid_is_joined_and_flagged() -> None:
    env = parse_env(fixture_env_block("agi_hostile_callerid_pct_crlf"))
    assert env.callerid == "5550100\r\nagi_extension" and env.extension == "2000"
    assert env.calleridname == "Evil%0d%0aagi_network: yes" and env.network is True
    assert env.suspicious and any("agi_callerid" in r for r in env.suspicious_reasons)


@pytest.mark.parametrize(
    ("value", "field", "authentic"),
    [
        ("123\r\nagi_extension: 666", "extension", "2000"),
        ("123\r\nagi_network_script: evil", "script", "screen"),
        ("123\r\nagi_context: default\r\nagi_priority: 1", "context", "inbound"),
        ("123\r\n\r\nagi_extension: 666", "extension", "2000"),
        # Bare LF (no CR to mark the continuation): Asterisk's key order still exposes the injection.
        ("123\nagi_extension: 666", "extension", "2000"),
        ("123\nagi_network_script: evil", "script", "screen"),
        ("123\nagi_request: agi://evil/x", "request", "agi://127.0.0.1:4573/screen"),
        ("123\nagi_calleridname: Bank", "calleridname", "SIPp Caller"),
        ("123\nagi_uniqueid: other", "uniqueid", "testpbx-1795350433.0"),
        ("123\nagi_arg_1: 110", "args", ("2000",)),
        ("123\nnot a key line", "extension", "2000"),
    ],
)
def test_injected_env_keys_never_win(value: str, field: str, authentic: object) -> None:
    env = parse_env(hostile_env(value))
    assert getattr(env, field) == authentic
    assert env.suspicious and env.suspicious_reasons
    assert env.callerid.startswith("123") and env.extension == "2000"


def test_crlf_injected_text_stays_in_the_caller_id() -> None:
    env = parse_env(hostile_env("123\r\nagi_extension: 666"))
    assert env.callerid == "123\r\nagi_extension: 666" and env.raw["agi_extension"] == "2000"


def test_bare_lf_injected_text_is_kept_with_the_caller_id() -> None:
    env = parse_env(hostile_env("123\nagi_extension: 666"))
    assert env.callerid == "123\nagi_extension: 666"


def test_value_ending_in_cr_does_not_swallow_the_terminator() -> None:
    block = ALLOW_ENV.replace("agi_arg_1: 2000\n\n", "agi_arg_1: 2000\r\n\n")
    events = feed_all([block.encode() + b"200 result=0\n"])
    assert isinstance(events[0], AgiEnv) and events[0].args == ("2000\r",) and events[0].suspicious
    assert isinstance(events[1], AgiReply)


def test_repeated_unknown_key_keeps_the_first() -> None:
    env = parse_env(
        ALLOW_ENV.replace("agi_enhanced: 0.0\n", "agi_enhanced: 0.0\nagi_future: a\nagi_future: b\n")
    )
    assert env.raw["agi_future"].split("\n")[0] == "a" and env.suspicious


def test_unknown_means_empty_only_for_caller_fields() -> None:
    env = parse_env(fixture_env_block("agi_hostile_callerid_empty_user"))
    assert (env.callerid, env.calleridname, env.rdnis) == ("", "", "")
    assert env.raw["agi_callerid"] == "unknown"


# ------------------------------------------------------------ stream framing


@pytest.mark.parametrize("name", agi_transcripts())
def test_byte_by_byte_gives_the_same_events_as_recorded_chunks(name: str) -> None:
    chunks = recv_chunks(name)
    whole = feed_all(chunks)
    assert feed_all([bytes([b]) for b in b"".join(chunks)]) == whole
    assert isinstance(whole[0], AgiEnv)
    assert isinstance(whole[-1], HangupNotice) and not any(isinstance(e, BadLine) for e in whole)


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_any_chunking_of_the_crlf_fixture_gives_the_same_events(cuts: list[int]) -> None:
    stream = b"".join(recv_chunks("agi_hostile_callerid_pct_crlf"))
    chunks, pos = [], 0
    for size in cuts:
        chunks.append(stream[pos : pos + size])
        pos += size
    chunks.append(stream[pos:])
    assert feed_all(chunks) == feed_all([stream])


def test_crlf_reply_stays_one_reply() -> None:
    stream = b"".join(recv_chunks("agi_hostile_callerid_pct_crlf"))
    replies = [e for e in feed_all([stream]) if isinstance(e, AgiReply)]
    assert [r.data for r in replies[:3]] == [
        '"Evil%0d%0aagi_network: yes" <5550100\r\nagi_extension>',
        "Evil%0d%0aagi_network: yes",
        "5550100\r\nagi_extension",
    ]
    assert len(replies) == 5  # 3 GET FULL VARIABLE, SET VARIABLE, HANGUP: no phantom reply


def test_hangup_notice_between_command_and_511() -> None:
    events = feed_all(recv_chunks("agi_caller_hangs_up"))
    kinds = [type(e).__name__ if not isinstance(e, AgiReply) else e.code for e in events]
    assert kinds == ["AgiEnv", 200, 200, "HangupNotice", 511, 200, 200, 200, "HangupNotice"]


def test_bare_lf_in_a_reply_value_stays_in_the_reply() -> None:
    parser = AgiStreamParser()
    parser.feed(ALLOW_ENV.encode())
    events = parser.feed(b"200 result=1 (123\nHANGUP)\n200 result=1\n")
    assert events == [
        AgiReply(200, "1", "123\nHANGUP", None, "200 result=1 (123\nHANGUP)"),
        parse_reply("200 result=1"),
    ]


def test_520_usage_block_is_one_reply() -> None:
    parser = AgiStreamParser()
    parser.feed(ALLOW_ENV.encode())
    events = parser.feed(
        b"520-Invalid command syntax.  Proper usage follows:\n"
        b"Usage: GET DATA <file>\n"
        b"520 End of proper usage.\n"
    )
    assert len(events) == 1 and isinstance(events[0], AgiReply) and events[0].code == 520
    assert "Usage: GET DATA" in events[0].data


def test_garbage_line_is_a_bad_line() -> None:
    parser = AgiStreamParser()
    parser.feed(ALLOW_ENV.encode())
    assert parser.feed(b"agi_extension: 666\n") == [BadLine("agi_extension: 666")]


def test_overlong_line_is_a_protocol_error() -> None:
    parser = AgiStreamParser(max_line_bytes=1024)
    with pytest.raises(AgiProtocolError):
        parser.feed(b"agi_callerid: " + b"9" * 2000)


# ------------------------------------------------------------ replies


@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos"),
    [
        ("200 result=0", 200, "0", "", None),
        ("200 result=0 endpos=11234", 200, "0", "", 11234),
        ("200 result= (timeout)", 200, "", "timeout", None),
        ("200 result=-1 endpos=12160", 200, "-1", "", 12160),
        ("200 result=49", 200, "49", "", None),
        ("200 result=1 (a (b) c)", 200, "1", "a (b) c", None),
        ("200 result=1 ()", 200, "1", "", None),
        ("200 result=0 (dtmf) endpos=99", 200, "0", "dtmf", 99),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, "",
         "Command Not Permitted on a dead channel or intercept routine", None),
        ("510 Invalid or unknown command", 510, "", "Invalid or unknown command", None),
    ],
)  # fmt: skip
def test_parse_reply(line: str, code: int, result: str, data: str, endpos: int | None) -> None:
    reply = parse_reply(line + "\n")
    assert (reply.code, reply.result, reply.data, reply.endpos, reply.raw) == (
        code,
        result,
        data,
        endpos,
        line,
    )


def test_reply_helpers() -> None:
    assert parse_reply("200 result=49").digit == "1"
    assert parse_reply("200 result=0").digit is None
    assert parse_reply("200 result= (timeout)").timed_out
    assert parse_reply("200 result=-1 endpos=1").result_int == -1
    assert not parse_reply("511 dead").ok


@pytest.mark.parametrize("line", ["HANGUP", "", "abc result=1", "20 result=1"])
def test_parse_reply_rejects_non_replies(line: str) -> None:
    with pytest.raises(AgiProtocolError):
        parse_reply(line)


# ------------------------------------------------------------ commands


def asterisk_parse_args(line: str) -> list[str]:
    """res_agi.c parse_args(), ported: how Asterisk splits a command line into arguments."""
    args: list[list[str]] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                args.append([])
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            args.append([])
            whitespace = False
        args[-1].append(ch)
        escaped = False
    return ["".join(a) for a in args]


@pytest.mark.parametrize(
    ("verb", "args", "wire"),
    [
        ("ANSWER", (), b"ANSWER\n"),
        ("STREAM FILE", ("hello-world", ""), b'STREAM FILE hello-world ""\n'),
        ("GET DATA", ("custom/press-1", 3000, 1), b"GET DATA custom/press-1 3000 1\n"),
        ("SET VARIABLE", ("SCREEN_RESULT", "allow"), b"SET VARIABLE SCREEN_RESULT allow\n"),
        ("VERBOSE", ("still here after hangup", 1), b'VERBOSE "still here after hangup" 1\n'),
        ("GET FULL VARIABLE", ("${CALLERID(all)}",), b"GET FULL VARIABLE ${CALLERID(all)}\n"),
        ("SET VARIABLE", ("X", 'a "b" \\c'), b'SET VARIABLE X "a \\"b\\" \\\\c"\n'),
    ],
)
def test_format_command_matches_the_fixtures(verb: str, args: tuple[str | int, ...], wire: bytes) -> None:
    assert format_command(verb, *args) == wire


@pytest.mark.parametrize("value", ["a\nHANGUP", "a\rb", "a\x00b", "\n"])
def test_cr_lf_nul_are_refused(value: str) -> None:
    with pytest.raises(AgiCommandError):
        format_command("SET VARIABLE", "X", value)


def test_overlong_command_and_bad_verb_are_refused() -> None:
    with pytest.raises(AgiCommandError):  # res_agi would run the part past 2047 bytes as a new command
        format_command("SET VARIABLE", "X", "9" * MAX_COMMAND_BYTES)
    with pytest.raises(AgiCommandError):
        format_command("ANSWER\nHANGUP")


@given(st.text(alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"])))
def test_quoted_value_reaches_asterisk_as_one_argument(value: str) -> None:
    line = format_command("SET VARIABLE", "X", value)
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert asterisk_parse_args(line.decode()[:-1]) == ["SET", "VARIABLE", "X", value]
    assert quote_arg(value) == value or quote_arg(value).startswith('"')
