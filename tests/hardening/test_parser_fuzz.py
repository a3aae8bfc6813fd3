"""Property tests of the byte-level parsers that face Asterisk and uploaded files.

AMI framing and event typing, the FastAGI env, and lead-file import must survive arbitrary input, be
independent of how reads are chunked, and never let a caller-controlled field (caller ID with a raw
CR LF, fixtures README finding 4) change the ids and outcomes the dialer correlates on.
`CC_SLOW=1` multiplies the number of examples.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dialer.ami.events import DialEnd, Hangup, OriginateResponse, to_event
from dialer.ami.message import AmiMessage
from dialer.ami.protocol import AmiParser, AmiProtocolError
from dialer.lead_import import (
    FORMULA_PREFIXES,
    MAX_FIELD_CHARS,
    UnreadableFile,
    plan_import,
    read_rows,
    spreadsheet_safe,
)
from ivr.agi.protocol import ENV_KEY_ORDER, AgiEnv, AgiStreamParser, parse_env

SCALE = 10 if os.environ.get("CC_SLOW") == "1" else 1
FAST = settings(max_examples=150 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=60 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` split at the given offsets (any order, duplicates allowed: empty reads happen too)."""
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)] or [b""]


CUTS = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


# ---------------------------------------------------------------- AMI framing

HEADER_KEY = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
HEADER_VALUE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30
)
AMI_MESSAGE = st.builds(
    lambda first, name, rest: [(first, name), *rest],
    st.sampled_from(["Event", "Response"]),
    HEADER_VALUE,
    st.lists(st.tuples(HEADER_KEY, HEADER_VALUE), max_size=8),
)


def encode_message(headers: list[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("utf-8")


AMI_STREAM = st.builds(
    lambda banner, messages: (
        (b"Asterisk Call Manager/9.0.0\r\n" if banner else b"")
        + b"".join(encode_message(m) for m in messages)
    ),
    st.booleans(),
    st.lists(AMI_MESSAGE, max_size=6),
)
# Real-looking streams with random damage: raw bytes spliced in, so both paths are exercised.
AMI_BYTES = st.one_of(
    st.binary(max_size=600),
    AMI_STREAM,
    st.builds(lambda a, junk, b: a + junk + b, AMI_STREAM, st.binary(max_size=40), AMI_STREAM),
)


def parse_all(chunks: list[bytes], **kw: int) -> tuple[list[AmiMessage], int, int]:
    parser = AmiParser(**kw)  # type: ignore[arg-type]
    out: list[AmiMessage] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out, parser.discarded, parser.buffered


@FAST
@given(data=AMI_BYTES, cuts=CUTS, limit=st.integers(min_value=8, max_value=2048))
def test_ami_parser_arbitrary_bytes_only_raise_protocol_error(
    data: bytes, cuts: list[int], limit: int
) -> None:
    try:
        messages, _, buffered = parse_all(chunked(data, cuts), max_message_bytes=limit)
    except AmiProtocolError:
        return
    assert buffered <= limit
    assert all(m.kind in ("event", "response", "banner") for m in messages)


@FAST
@given(data=AMI_BYTES, cuts=CUTS)
def test_ami_parser_is_chunking_invariant(data: bytes, cuts: list[int]) -> None:
    assert parse_all(chunked(data, cuts)) == parse_all([data])
    assert parse_all(chunked(data, cuts)) == parse_all([data[i : i + 1] for i in range(len(data))] or [b""])


@FAST
@given(messages=st.lists(AMI_MESSAGE, min_size=1, max_size=6), cuts=CUTS)
def test_ami_parser_round_trips_messages_in_stream_order(
    messages: list[list[tuple[str, str]]], cuts: list[int]
) -> None:
    data = b"".join(encode_message(m) for m in messages)
    parsed, discarded, buffered = parse_all(chunked(data, cuts), expect_banner=False)
    assert [list(m.headers) for m in parsed] == messages
    assert (discarded, buffered) == (0, 0)


# ---------------------------------------------------------------- AMI events

EVENT_NAMES = st.sampled_from(
    [
        "OriginateResponse", "Newchannel", "Newstate", "VarSet", "DialBegin", "DialEnd", "BridgeEnter",
        "Hangup", "UserEvent", "Cdr", "AgentConnect", "AgentComplete", "QueueCallerAbandon",
        "CoreShowChannel", "FullyBooted", "Shutdown", "SomethingElse",
    ]
)  # fmt: skip
EVENT_KEYS = st.sampled_from(
    [
        "Channel", "Uniqueid", "Linkedid", "ChannelState", "Cause", "Cause-txt", "Reason", "Response",
        "ActionID", "DialStatus", "DestChannel", "DestUniqueid", "Duration", "BillableSeconds", "HoldTime",
        "TalkTime", "Uptime", "Restart", "Shutdown", "CallerIDNum", "UserEvent", "uniqueid", "CAUSE",
    ]
)  # fmt: skip
ODD_VALUES = st.one_of(
    HEADER_VALUE,
    st.integers().map(str),
    st.sampled_from(["", "<unknown>", "-1", "1e9", "९", "0x10", " 16", "16 ", "True", "\n"]),
)


@FAST
@given(
    name=EVENT_NAMES,
    headers=st.lists(st.tuples(EVENT_KEYS | HEADER_KEY, ODD_VALUES), max_size=12),
)
def test_to_event_never_raises_on_a_parsed_event(name: str, headers: list[tuple[str, str]]) -> None:
    data = encode_message([("Event", name), *((k, v.replace("\n", " ")) for k, v in headers)])
    (message,) = AmiParser(expect_banner=False).feed(data)
    to_event(message)


@FAST
@given(data=AMI_BYTES)
def test_to_event_never_raises_on_anything_the_parser_yields(data: bytes) -> None:
    for message in parse_all([data])[0]:
        if message.kind == "event":
            to_event(message)


# Header orders as Asterisk 20 writes them (fixtures originate_answered, originate_busy).
HANGUP = [
    ("Event", "Hangup"), ("Privilege", "call,all"), ("Timestamp", "1795350072.016053"),
    ("SystemName", "testpbx"), ("Channel", "SIP/sipp-far-end-00000000"), ("ChannelState", "6"),
    ("ChannelStateDesc", "Up"), ("CallerIDNum", "1000"), ("CallerIDName", "Campaign 7"),
    ("ConnectedLineNum", "5550100"), ("ConnectedLineName", "Campaign 7"), ("Language", "en"),
    ("AccountCode", ""), ("Context", "inbound"), ("Exten", ""), ("Priority", "1"),
    ("Uniqueid", "testpbx-1795350069.2"), ("Linkedid", "testpbx-1795350069.0"), ("Cause", "16"),
    ("Cause-txt", "Normal Clearing"),
]  # fmt: skip
DIAL_END = [
    ("Event", "DialEnd"), ("Privilege", "call,all"), ("Timestamp", "1795350069.012701"),
    ("SystemName", "testpbx"), ("Channel", "Local/1000@outbound-00000000;2"), ("ChannelState", "4"),
    ("ChannelStateDesc", "Ring"), ("CallerIDNum", "5550100"), ("CallerIDName", "Campaign 7"),
    ("ConnectedLineNum", "5550100"), ("ConnectedLineName", "Campaign 7"), ("Language", "en"),
    ("AccountCode", ""), ("Context", "outbound"), ("Exten", "1000"), ("Priority", "8"),
    ("Uniqueid", "testpbx-1795350069.1"), ("Linkedid", "testpbx-1795350069.0"),
    ("DestChannel", "SIP/sipp-far-end-00000000"), ("DestChannelState", "6"), ("DestChannelStateDesc", "Up"),
    ("DestCallerIDNum", "1000"), ("DestCallerIDName", "Campaign 7"), ("DestConnectedLineNum", "5550100"),
    ("DestConnectedLineName", "Campaign 7"), ("DestLanguage", "en"), ("DestAccountCode", ""),
    ("DestContext", "inbound"), ("DestExten", ""), ("DestPriority", "1"),
    ("DestUniqueid", "testpbx-1795350069.2"), ("DestLinkedid", "testpbx-1795350069.0"),
    ("DialStatus", "ANSWER"),
]  # fmt: skip
ORIGINATE_RESPONSE = [
    ("Event", "OriginateResponse"), ("Privilege", "call,all"), ("Timestamp", "1795350076.6"),
    ("SystemName", "testpbx"), ("ActionID", "orig-busy-1"), ("Response", "Failure"),
    ("Channel", "Local/2000@outbound"), ("Context", "test"), ("Exten", "hello"), ("Reason", "0"),
    ("Uniqueid", "<unknown>"), ("CallerIDNum", "5550100"), ("CallerIDName", "Campaign 7"),
]  # fmt: skip
INJECTABLE = ("CallerIDNum", "CallerIDName", "ConnectedLineNum")


def protected_fields(event: object) -> tuple[object, ...]:
    if isinstance(event, Hangup):
        return (event.ref.uniqueid, event.ref.linkedid, event.ref.channel, event.cause)
    if isinstance(event, DialEnd):
        assert event.ref is not None
        return (
            event.ref.uniqueid,
            event.ref.linkedid,
            event.dest_uniqueid,
            event.dest_channel,
            event.dial_status,
        )
    assert isinstance(event, OriginateResponse)
    return (event.action_id, event.uniqueid, event.success, event.reason, event.channel)


# Injected text: header-looking lines for exactly the keys we correlate on, plus noise.
INJECTED_LINE = st.one_of(
    st.builds(
        lambda k, v: f"{k}: {v}",
        st.sampled_from(
            [
                "Uniqueid",
                "Linkedid",
                "Cause",
                "DialStatus",
                "ActionID",
                "Response",
                "Reason",
                "Channel",
                "DestUniqueid",
                "DestChannel",
                "uniqueid",
                "CAUSE",
                "Event",
            ]
        ),
        st.sampled_from(["victim-1", "21", "BUSY", "ANSWER", "Success", "4", "SIP/evil", ""]),
    ),
    st.builds(lambda k: f"{k}:", st.sampled_from(["Uniqueid", "Cause", "DialStatus"])),
    HEADER_VALUE,
)
INJECTION = st.builds(
    lambda head, lines, sep: head + "".join(sep + line for line in lines),
    HEADER_VALUE,
    st.lists(INJECTED_LINE, min_size=1, max_size=5),
    st.sampled_from(["\r\n", "\r\n", "\n", "\r"]),
)


@FAST
@given(
    template=st.sampled_from([HANGUP, DIAL_END, ORIGINATE_RESPONSE]),
    targets=st.lists(st.sampled_from(INJECTABLE), min_size=1, max_size=3, unique=True),
    injections=st.lists(INJECTION, min_size=3, max_size=3),
    cuts=CUTS,
)
def test_caller_id_injection_never_changes_correlation_fields(
    template: list[tuple[str, str]], targets: list[str], injections: list[str], cuts: list[int]
) -> None:
    hostile = [
        (k, injections[targets.index(k)] if k in targets else v) for k, v in template if k in INJECTABLE
    ]
    assume(any(k in targets for k, _ in template))
    headers = [(k, dict(hostile).get(k, v)) for k, v in template]
    data = encode_message(headers)
    # An injected empty line ends the message and starts a forged one: indistinguishable at this layer
    # (dialer/ami/protocol.py docstring). Only single-message injections are in scope here.
    assume(data.find(b"\r\n\r\n") == len(data) - 4)
    clean, _, _ = parse_all([encode_message(template)], expect_banner=False)
    parsed, _, _ = parse_all(chunked(data, cuts), expect_banner=False)
    assert len(parsed) == 1
    assert protected_fields(to_event(parsed[0])) == protected_fields(to_event(clean[0]))


# ---------------------------------------------------------------- FastAGI env

AUTHENTIC_ENV = {
    "agi_network": "yes",
    "agi_network_script": "screen?trunk=carrier1",
    "agi_request": "agi://127.0.0.1:4573/screen?trunk=carrier1",
    "agi_channel": "SIP/sipp-uac-00000003",
    "agi_language": "en",
    "agi_type": "SIP",
    "agi_uniqueid": "testpbx-1795350100.7",
    "agi_version": "20.20.1",
    "agi_callerid": "5551234",
    "agi_calleridname": "unknown",
    "agi_callingpres": "0",
    "agi_callingani2": "0",
    "agi_callington": "0",
    "agi_callingtns": "0",
    "agi_dnid": "2000",
    "agi_rdnis": "unknown",
    "agi_context": "inbound",
    "agi_extension": "2000",
    "agi_priority": "2",
    "agi_enhanced": "0.0",
    "agi_accountcode": "",
    "agi_threadid": "140245120857792",
}
assert tuple(AUTHENTIC_ENV) == ENV_KEY_ORDER


def env_block(callerid: str, calleridname: str = "unknown") -> bytes:
    values = {**AUTHENTIC_ENV, "agi_callerid": callerid, "agi_calleridname": calleridname}
    lines = [f"{k}: {v}" for k, v in values.items()] + ["agi_arg_1: 2000"]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def protected_env(env: AgiEnv) -> tuple[str, str, str, str]:
    return (env.extension, env.network_script, env.request, env.uniqueid)


AUTHENTIC = (
    "2000",
    "screen?trunk=carrier1",
    "agi://127.0.0.1:4573/screen?trunk=carrier1",
    "testpbx-1795350100.7",
)
HOSTILE_TEXT = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "\r\n",
                "\r",
                "\n",
                ": ",
                "agi_extension: 666",
                "agi_network_script: evil",
                "agi_request: x",
                "agi_uniqueid: victim",
                "agi_arg_1: 666",
                "agi_context: x",
                "unknown",
                "%0d%0a",
                " ",
            ]
        ),
        st.text(max_size=8),
    ),
    max_size=12,
).map("".join)


def crlf_only(value: str) -> bool:
    """Line breaks only as CR LF, as chan_sip delivered them (agi_hostile_callerid_pct_crlf)."""
    return "\n" not in value.replace("\r\n", "") and not value.endswith("\r\n")


def stream_env(block: bytes, cuts: list[int]) -> AgiEnv:
    parser = AgiStreamParser()
    events = [event for chunk in chunked(block, cuts) for event in parser.feed(chunk)]
    assert isinstance(events[0], AgiEnv)
    return events[0]


@FAST
@given(callerid=HOSTILE_TEXT, name=HOSTILE_TEXT, cuts=CUTS)
def test_agi_crlf_in_caller_id_never_changes_routing_fields(
    callerid: str, name: str, cuts: list[int]
) -> None:
    assume(crlf_only(callerid) and crlf_only(name))
    block = env_block(callerid, name)
    env = parse_env(block)
    assert protected_env(env) == AUTHENTIC
    assert protected_env(stream_env(block, cuts)) == AUTHENTIC
    if "\r" in callerid + name:
        assert env.suspicious


@FAST
@given(callerid=HOSTILE_TEXT, name=HOSTILE_TEXT)
def test_agi_any_caller_id_never_forges_fields_before_it_and_is_flagged_otherwise(
    callerid: str, name: str
) -> None:
    env = parse_env(env_block(callerid, name))
    assert protected_env(env)[1:] == AUTHENTIC[1:]  # written before the caller ID: never forgeable
    if env.extension != AUTHENTIC[0]:
        assert env.suspicious, env


def test_agi_bare_lf_injection_of_a_longer_in_order_tail_does_not_win() -> None:
    tail = [f"{k}: {'666' if k == 'agi_extension' else 'x'}" for k in ENV_KEY_ORDER[9:]]
    tail += [f"agi_arg_{n}: 666" for n in range(1, 6)]
    env = parse_env(env_block("5550100\n" + "\n".join(tail)))
    assert env.extension == "2000"
    assert env.args == ("2000",)


def test_agi_empty_line_in_caller_id_does_not_end_the_env() -> None:
    env = stream_env(env_block("5550100\n\nagi_extension: 666"), [])
    assert env.extension == "2000"


# ---------------------------------------------------------------- lead import

PHONE_OK = st.integers(min_value=0, max_value=10**8 - 1)
CELL_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=20
)
FORMULA_CELL = st.one_of(
    st.sampled_from(
        ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1", '=HYPERLINK("http://x","y")']
    ),
    st.builds(lambda p, t: p + t, st.sampled_from(FORMULA_PREFIXES[:4]), CELL_TEXT),
)
BAD_ROW = st.sampled_from(["invalid_phone", "too_many_cells", "field_too_long", "invalid_grade"])


@st.composite
def lead_file(draw: st.DrawFn) -> tuple[list[list[str]], dict[int, str], dict[int, str]]:
    """Rows (header first), {line: phone} of good rows, {line: expected code} of bad rows."""
    rows: list[list[str]] = [["电话", "姓名", "意向等级"]]
    good: dict[int, str] = {}
    bad: dict[int, str] = {}
    for index in range(draw(st.integers(min_value=0, max_value=12))):
        line = index + 2
        name = draw(st.one_of(CELL_TEXT, FORMULA_CELL))
        phone = f"139{index:02d}{draw(PHONE_OK) % 10**6:06d}"
        kind = draw(st.one_of(st.none(), BAD_ROW))
        if kind is None:
            rows.append([phone, name, draw(st.sampled_from(["", "a", "B"]))])
            good[line] = "+86" + phone
        elif kind == "invalid_phone":
            rows.append([draw(st.sampled_from(["12345", "abc", "+999 1", "0"])), name, ""])
            bad[line] = "invalid_phone"
        elif kind == "too_many_cells":
            rows.append([phone, name, "", "extra"])
            bad[line] = "too_many_cells"
        elif kind == "field_too_long":
            rows.append([phone, "长" * (MAX_FIELD_CHARS + 1 + draw(st.integers(0, 5000))), ""])
            bad[line] = "field_too_long"
        else:
            rows.append([phone, name, draw(st.sampled_from(["D", "AA", "1"]))])
            bad[line] = "invalid_grade"
    return rows, good, bad


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    # QUOTE_ALL: with a "\n" terminator the minimal style would leave a lone CR unquoted.
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL).writerows(rows)
    return out.getvalue()


def plan_csv(data: bytes, filename: str = "leads.csv"):  # type: ignore[no-untyped-def]
    return plan_import(
        read_rows(data, filename), default_region="CN", existing_phones=set(), is_dnc=lambda _: False
    )


def gbk_safe(rows: list[list[str]]) -> bool:
    try:
        to_csv(rows).encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


@MEDIUM
@given(file=lead_file(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk", "gb18030"]))
def test_lead_import_reports_every_bad_row_by_line_and_imports_every_good_one(
    file: tuple[list[list[str]], dict[int, str], dict[int, str]], encoding: str
) -> None:
    rows, good, bad = file
    if encoding == "gbk":
        assume(gbk_safe(rows))
    result = plan_csv(to_csv(rows).encode(encoding))
    assert {d.line: d.phone_e164 for d in result.drafts} == good
    assert {e.line: e.code.split(":")[0] for e in result.errors} == bad
    assert result.total_rows == len(good) + len(bad)
    for draft in result.drafts:  # values are kept literal; neutralised only where exported
        assert draft.name == rows[draft.line - 1][1].strip()
        assert not spreadsheet_safe(draft.name).startswith(FORMULA_PREFIXES)


@FAST
@given(value=st.text(max_size=30))
def test_spreadsheet_safe_output_never_starts_a_formula(value: str) -> None:
    safe = spreadsheet_safe(value)
    assert not safe.startswith(FORMULA_PREFIXES)
    assert safe.removeprefix("'") == value or safe == value


# Damage on a good file: broken quoting, NUL, stray bytes, a huge field, CR-only line ends.
DAMAGE = st.sampled_from(
    [b'"', b'13800000001,"unterminated\n', b"\x00", b'a"b,"c""d', b"\r", b"\xff\xfe", b",,,,\n", b"\n\n"]
)


@MEDIUM
@given(
    file=lead_file(),
    damage=st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), DAMAGE), max_size=4),
    bom=st.booleans(),
)
def test_lead_import_damaged_files_never_crash(
    file: tuple[list[list[str]], dict[int, str], dict[int, str]],
    damage: list[tuple[int, bytes]],
    bom: bool,
) -> None:
    data = to_csv(file[0]).encode("utf-8")
    for offset, junk in damage:
        at = offset % (len(data) + 1)
        data = data[:at] + junk + data[at:]
    try:
        result = plan_csv((b"\xef\xbb\xbf" if bom else b"") + data)
    except UnreadableFile as exc:
        assert str(exc)
        return
    assert len(result.drafts) + len(result.errors) == result.total_rows
    assert all(e.line >= 2 for e in result.errors)


def test_lead_import_field_over_the_csv_limit_is_reported_with_its_line() -> None:
    data = ("phone,name\n13811112222,ok\n13811113333," + "x" * 70_000 + "\n13811114444,ok\n").encode()
    with pytest.raises(UnreadableFile, match=r"line \d+: .*field larger than field limit"):
        plan_csv(data)


@pytest.mark.parametrize(
    "cell", ["=cmd|' /C calc'!A0", "+86 138", "-1+1", "@SUM(1)", "\t=1", "\r=1", "=1\n=2"]
)
def test_formula_cells_survive_import_literally_and_export_neutralised(cell: str) -> None:
    result = plan_csv(to_csv([["phone", "name", "公司"], ["13812345678", "ok", cell]]).encode("gb18030"))
    (draft,) = result.drafts
    assert draft.company == cell.strip()
    assert not spreadsheet_safe(draft.company).startswith(FORMULA_PREFIXES)


def test_nul_in_a_cell_is_reported_or_removed_not_passed_on() -> None:
    result = plan_csv(b"phone,name\n13812345678,a\x00b\n13812345679,ok\n")
    assert not any("\x00" in d.name for d in result.drafts)
    assert not re.search("\x00", repr([d.custom for d in result.drafts]))
