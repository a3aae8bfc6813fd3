"""agents.scripts: parsing/validation, rendering, lead-driven recommendations, the trail; the samples."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.script_samples import load_sample
from agents.scripts import (
    KINDS,
    OBJECTIONS,
    RenderContext,
    ScriptInvalid,
    ScriptTrail,
    evaluate,
    parse_condition,
    parse_script,
    reachable,
    recommend,
    render_stage,
    render_text,
)
from core.errors import NotFound, ValidationFailed
from dialer.models import Campaign, Lead

LANGS = ["zh-CN", "en"]
# SEEDS: brochures / what do you do / later / think about it / criticism / price / big carrier / complaint
SEED_OBJECTIONS = {
    "send_materials",
    "what_do_you_do",
    "call_later",
    "think_about_it",
    "company_criticism",
    "price",
    "big_carrier",
    "complaint",
}
T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


def sample(lang: str) -> Any:
    return parse_script(load_sample(lang))


def minimal(**stages: object) -> dict[str, Any]:
    base: dict[str, Any] = {
        "start": "a",
        "stages": {
            "a": {
                "kind": "opening",
                "title": "A",
                "text": "Hi {lead.name}",
                "branches": [{"label": "go", "to": "z"}],
            },
            "z": {"kind": "thanks", "title": "Z", "text": "Bye"},
        },
    }
    base["stages"].update(stages)
    return base


def problems(body: object, **kw: Any) -> set[tuple[str, str]]:
    with pytest.raises(ScriptInvalid) as err:
        parse_script(body, **kw)
    assert isinstance(err.value, ValidationFailed)
    assert err.value.details == [
        {"path": p.path, "code": p.code, "message": p.message} for p in err.value.problems
    ]
    return {(p.path, p.code) for p in err.value.problems}


# --- the samples ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", [*LANGS, "zh_CN"])
def test_samples_parse_and_every_stage_is_reachable(lang: str) -> None:
    tree = sample(lang)
    assert reachable(tree) == set(tree.stages)
    assert {s.kind for s in tree.stages.values()} == KINDS
    assert tree.stage(tree.start).kind == "opening"


def test_unknown_sample_language_is_refused_and_samples_are_fresh_copies() -> None:
    with pytest.raises(ValidationFailed):
        load_sample("fr")
    body = load_sample("en")
    body["stages"].clear()
    assert load_sample("en")["stages"]


@pytest.mark.parametrize("lang", LANGS)
def test_every_seed_objection_has_a_stage(lang: str) -> None:
    tree = sample(lang)
    found = {s.objection for s in tree.stages.values() if s.kind == "objection"}
    assert found == SEED_OBJECTIONS == OBJECTIONS


def test_both_languages_share_one_structure_with_their_own_text() -> None:
    zh, en = load_sample("zh-CN"), load_sample("en")
    assert zh["start"] == en["start"]
    assert zh["stages"].keys() == en["stages"].keys()
    for sid, zs in zh["stages"].items():
        es = en["stages"][sid]
        assert (zs["kind"], zs.get("objection")) == (es["kind"], es.get("objection")), sid
        assert [(b["to"], b.get("when")) for b in zs.get("branches", [])] == [
            (b["to"], b.get("when")) for b in es.get("branches", [])
        ], sid
        assert [(r["to"], r["when"]) for r in zs.get("recommend", [])] == [
            (r["to"], r["when"]) for r in es.get("recommend", [])
        ], sid
        assert zs["text"] != es["text"]
        assert set(re.findall(r"\{[^{}]*\}", zs["text"])) == set(re.findall(r"\{[^{}]*\}", es["text"])), sid


@pytest.mark.parametrize("lang", LANGS)
def test_samples_follow_the_call_stages_in_seeds(lang: str) -> None:
    tree = sample(lang)
    opening = tree.stage("opening")
    for placeholder in ("{lead.name}", "{agent.name}", "{campaign.company_name}"):
        assert placeholder in opening.text
    assert ("录音" if lang == "zh-CN" else "recorded") in opening.text  # disclosure, with the reason
    assert ("三分钟" if lang == "zh-CN" else "three minutes") in tree.stage("purpose").text
    assert "gatekeeper" in {b.to for b in opening.branches}
    # two concrete, non-round appointment times
    pattern = r"(\d{1,2})点(\d{2})分" if lang == "zh-CN" else r"(\d{1,2}):(\d{2})"
    times = re.findall(pattern, tree.stage("close").text)
    assert len(times) == 2 and all(minute != "00" for _, minute in times)
    confirm = tree.stage("close_confirm").text
    assert "{campaign.callback_number}" in confirm
    # every way out of the call ends on a thanks stage, and every thanks stage is an ending
    assert all(s.kind == "thanks" for s in tree.stages.values() if not s.branches)
    assert all(not s.branches for s in tree.stages.values() if s.kind == "thanks")
    # needs: open questions lead to closed ones before any presentation
    assert {b.to for b in tree.stage("needs_open").branches} >= {"needs_closed"}
    assert all(s.hints for s in tree.stages.values())


@pytest.mark.parametrize("lang", LANGS)
def test_samples_do_not_teach_pressure_or_pestering(lang: str) -> None:
    words = (
        ["必须", "你忘了", "您忘了", "名额有限", "最后机会", "马上决定"]
        if lang == "zh-CN"
        else ["you must", "you forgot", "last chance", "only today", "decide now", "limited offer"]
    )
    stages = load_sample(lang)["stages"].values()
    spoken = " ".join(s["text"] for s in stages).lower()
    assert not [w for w in words if w in spoken]
    # a refusal always has a polite way out, from the first question onwards
    tree = sample(lang)
    for sid in ("permission", "hook", "close", "obj_call_later", "obj_think_about_it", "obj_price"):
        assert "thanks_decline" in {b.to for b in tree.stage(sid).branches}, sid


# --- rendering -----------------------------------------------------------------------------------

FULL_LEAD = {
    "name": "Ms Chen",
    "company": "Harbour Logistics",
    "segment": "logistics",
    "man_authority": True,
    "custom": {"current_services": ["landline", "mobile"], "headcount": 85},
}
CAMPAIGN = {"company_name": "Metro Telecom", "callback_number": "400 820 1234"}


def test_render_with_a_full_lead() -> None:
    ctx = RenderContext(lead=FULL_LEAD, agent_name="Li Wei", campaign=CAMPAIGN, language="en")
    opening = render_stage(sample("en"), "opening", ctx)
    assert opening.text.startswith("Good morning, may I speak with Ms Chen? My name is Li Wei")
    assert "Metro Telecom" in opening.text and "[" not in opening.text
    assert [b.to for b in opening.branches] == ["permission", "gatekeeper", "gatekeeper", "obj_complaint"]
    offer = render_stage(sample("en"), "offer", ctx)
    assert "landline, mobile" in offer.text
    assert [r.to for r in offer.recommended] == ["offer_full_bundle"]
    assert offer.recommended[0].title == "Offer: full business bundle" and offer.recommended[0].why


def test_render_with_orm_rows_and_nothing_escaped() -> None:
    lead = Lead(
        name="陈<b>经理</b>", company="海港物流", segment="sme", custom={"current_services": ["adsl"]}
    )
    campaign = Campaign(name="c", caller_id_number="+8602100000000", company_name="城市电信")
    ctx = RenderContext(lead=lead, agent_name="李伟", campaign=campaign, language="zh-CN")
    tree = sample("zh-CN")
    text = render_stage(tree, "opening", ctx).text
    assert text.startswith("您好，请问是陈<b>经理</b>吗？我是城市电信政企客户部的李伟。")
    assert [r.to for r in render_stage(tree, "needs_closed", ctx).recommended] == ["pitch_sme"]
    assert "〔回拨号码〕" in render_stage(tree, "thanks_decline", ctx).text  # campaign has no number yet


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("zh-CN", "您好，请问是〔客户姓名〕吗？我是〔本公司名称〕政企客户部的〔坐席姓名〕。"),
        ("en", "Good morning, may I speak with [lead name]? My name is [agent name], and I'm calling from"),
    ],
)
@pytest.mark.parametrize("lead", [None, {}, {"name": "", "custom": None}, object()])
def test_render_with_missing_fields_shows_markers(lang: str, expected: str, lead: object) -> None:
    ctx = RenderContext(lead=lead, language=lang)
    tree = sample(lang)
    assert render_stage(tree, "opening", ctx).text.startswith(expected)
    offer = render_stage(tree, "offer", ctx)
    assert ("〔current_services〕" if lang == "zh-CN" else "[current_services]") in offer.text
    assert offer.recommended == ()
    for sid in tree.stages:
        render_stage(tree, sid, ctx)


def test_render_text_leaves_unknown_braces_alone_and_does_not_reexpand_values() -> None:
    ctx = RenderContext(lead={"name": "{agent.name}"}, agent_name="Bo", language="en")
    assert render_text("{lead.name} / {nope} / {agent.name} / {lead.custom.a.b}", ctx) == (
        "{agent.name} / {nope} / Bo / [b]"
    )


def test_conditional_branches_follow_the_lead() -> None:
    tree = sample("en")

    def shown(lead: object) -> set[str]:
        return {b.to for b in render_stage(tree, "needs_closed", RenderContext(lead=lead)).branches}

    assert "needs_authority" in shown({"man_authority": False})
    assert "needs_authority" in shown(None)
    assert "needs_authority" not in shown({"man_authority": True})


def test_unknown_stage_is_not_found() -> None:
    tree = sample("en")
    with pytest.raises(NotFound):
        render_stage(tree, "nope", RenderContext())
    with pytest.raises(NotFound):
        recommend(tree, "nope", {})


# --- recommendations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lead", "expected"),
    [
        ({"segment": "group"}, ["pitch_group"]),
        ({"segment": "institution"}, ["pitch_group"]),
        ({"segment": "media"}, ["pitch_price"]),
        ({"segment": "Advertising"}, ["pitch_price"]),
        ({"segment": "logistics"}, ["pitch_price"]),
        ({"segment": "chain"}, ["pitch_chain"]),
        ({"segment": "sme"}, ["pitch_sme"]),
        ({"segment": "SME", "custom": {"current_services": ["adsl"]}}, ["pitch_sme"]),
        ({"segment": "micro"}, ["pitch_micro"]),
        ({"segment": "sme", "custom": {"headcount": 6}}, ["pitch_micro", "pitch_sme"]),
        ({"segment": "sme", "custom": {"headcount": "40"}}, ["pitch_sme"]),
        ({"segment": ""}, []),
        ({}, []),
    ],
)
@pytest.mark.parametrize("lang", LANGS)
def test_segment_picks_the_presentation(lang: str, lead: dict[str, Any], expected: list[str]) -> None:
    got = recommend(sample(lang), "needs_closed", lead)
    assert [r.to for r in got] == expected
    assert all(r.why and r.title for r in got)


def test_adsl_smes_get_the_upgrade_reason() -> None:
    lead = {"segment": "sme", "custom": {"current_services": ["adsl", "landline"]}}
    (rec,) = recommend(sample("en"), "needs_closed", lead)
    assert "ADSL" in rec.why


@pytest.mark.parametrize(
    ("services", "spend", "expected"),
    [
        (["landline", "mobile"], None, ["offer_full_bundle"]),
        (["Mobile", "Landline", "broadband"], 300, ["offer_full_bundle"]),
        (["landline"], 5000, ["offer_usage_heavy"]),
        (["landline", "adsl"], "2000", ["offer_usage_heavy"]),
        (["landline"], 800, ["offer_usage_light"]),
        (["landline"], " 1999.5 ", ["offer_usage_light"]),
        (["landline"], None, []),  # usage unknown: the agent asks first
        (["landline"], "lots", []),
        (["mobile"], None, ["offer_mobile_bundle"]),
        (["mobile", "adsl"], 9000, ["offer_mobile_bundle"]),
        (["adsl"], None, ["offer_line_only"]),
        ("landline", 3000, ["offer_usage_heavy"]),  # a single text value from an import
        (None, None, []),
        ([], None, []),
    ],
)
@pytest.mark.parametrize("lang", LANGS)
def test_current_services_pick_the_offer(
    lang: str, services: object, spend: object, expected: list[str]
) -> None:
    custom: dict[str, object] = {"current_services": services}
    if spend is not None:
        custom["monthly_telecom_spend"] = spend
    assert [r.to for r in recommend(sample(lang), "offer", {"custom": custom})] == expected


# --- validation ----------------------------------------------------------------------------------


def test_invalid_script_reports_every_problem_with_paths() -> None:
    body = minimal(
        b={
            "kind": "pitch",
            "title": "B",
            "text": "Hello {lead.nickname} from {agent.name}",
            "hints": ["ok", 3],
            "branches": [
                {"label": "x", "to": "nowhere"},
                {"label": "y", "to": "z", "when": {"field": "grade"}},
            ],
            "recommend": [{"when": {"field": "segment", "op": "like", "value": "a"}, "to": "z", "why": "w"}],
            "colour": "red",
        },
        c={"kind": "needs", "title": "C", "text": "dead end"},
        d={"kind": "objection", "objection": "weather", "title": "D", "text": "{lead}", "branches": []},
    )
    body["stages"]["a"]["branches"].append({"label": "to b", "to": "b"})
    assert problems(body) == {
        ("stages.b.kind", "unknown_kind"),
        ("stages.b.text", "unknown_placeholder"),
        ("stages.b.hints[1]", "type"),
        ("stages.b.branches[0].to", "unknown_target"),
        ("stages.b.branches[1].when.op", "unknown_op"),
        ("stages.b.recommend[0].when.op", "unknown_op"),
        ("stages.b.colour", "unknown_key"),
        ("stages.c.branches", "dead_end"),
        ("stages.c", "unreachable"),
        ("stages.d.objection", "bad_objection"),
        ("stages.d.text", "unknown_placeholder"),
        ("stages.d.branches", "dead_end"),
        ("stages.d", "unreachable"),
    }


def test_start_and_stage_shape_problems() -> None:
    assert problems([]) == {("", "type")}
    assert problems({"start": "x", "stages": {}, "extra": 1}) == {
        ("extra", "unknown_key"),
        ("stages", "missing"),
        ("start", "unknown_target"),
    }
    body = minimal(q="not an object")
    body["start"] = ["a"]
    body["title"] = 7
    found = problems(body)
    assert {("start", "unknown_target"), ("stages.q", "type"), ("title", "type")} <= found
    missing = minimal(m={"kind": "close"})
    assert {("stages.m.title", "missing"), ("stages.m.text", "missing")} <= problems(missing)


def test_unreachable_stages_can_be_allowed() -> None:
    body = minimal(spare={"kind": "thanks", "title": "S", "text": "Thanks"})
    assert problems(body) == {("stages.spare", "unreachable")}
    tree = parse_script(body, allow_unreachable=True)
    assert reachable(tree) == {"a", "z"}
    assert set(tree.stages) == {"a", "z", "spare"}


@pytest.mark.parametrize(
    ("cond", "code"),
    [
        ({"field": "segment", "op": "matches", "value": "x"}, "unknown_op"),
        ({"field": "segment", "op": ["eq"], "value": "x"}, "unknown_op"),
        ({"field": "__class__", "op": "eq", "value": "x"}, "bad_field"),
        ({"field": "__import__('os').system('id')", "op": "eq", "value": 1}, "bad_field"),
        ({"field": "custom", "op": "exists"}, None),
        ({"field": "custom.", "op": "exists"}, "bad_field"),
        ({"field": "segment", "op": "in", "value": "group"}, "bad_value"),
        ({"field": "segment", "op": "gte", "value": "10"}, "bad_value"),
        ({"field": "segment", "op": "gte", "value": True}, "bad_value"),
        ({"field": "segment", "op": "contains", "value": ["a"]}, "bad_value"),
        ({"field": "segment", "op": "exists", "value": "yes"}, "bad_value"),
        ({"field": "segment", "op": "eq"}, "bad_value"),
        ({"field": "segment", "op": "eq", "value": 1, "extra": 2}, "unknown_key"),
        ({"all": []}, "bad_condition"),
        ({"any": {"field": "segment"}}, "bad_condition"),
        ({"not": {"field": "segment", "op": "exists"}, "all": []}, "bad_condition"),
        ("segment == 'sme'", "bad_condition"),
        (None, "bad_condition"),
    ],
)
def test_bad_conditions_are_reported(cond: object, code: str | None) -> None:
    out: list[Any] = []
    parsed = parse_condition(cond, "when", out)
    if code is None:
        assert parsed is not None and out == []
    else:
        assert parsed is None and code in {p.code for p in out}


def test_deeply_nested_conditions_are_refused_not_recursed() -> None:
    cond: object = {"field": "segment", "op": "exists"}
    for _ in range(5000):
        cond = {"not": cond}
    out: list[Any] = []
    assert parse_condition(cond, "when", out) is None
    assert [p.code for p in out] == ["too_deep"]


@pytest.mark.parametrize(
    ("cond", "lead", "expected"),
    [
        ({"field": "grade", "op": "eq", "value": "a"}, {"grade": "A"}, True),
        ({"field": "man_need", "op": "eq", "value": True}, {"man_need": 1}, False),
        ({"field": "attempts", "op": "eq", "value": 1}, {"attempts": True}, False),
        ({"field": "custom.a.b", "op": "eq", "value": [1, 2]}, {"custom": {"a": {"b": [1, 2]}}}, True),
        ({"field": "custom.a.b", "op": "exists"}, {"custom": {"a": "text"}}, False),
        ({"field": "custom.a", "op": "exists", "value": False}, {"custom": {"a": ""}}, True),
        ({"field": "region", "op": "in", "value": ["sh", "BJ"]}, {"region": "bj"}, True),
        ({"field": "company", "op": "contains", "value": "LOG"}, {"company": "Harbour Logistics"}, True),
        ({"field": "custom.m", "op": "contains", "value": "k"}, {"custom": {"m": {"k": 1}}}, True),
        ({"field": "custom.m", "op": "contains", "value": 1}, {"custom": {"m": {"k": 1}}}, False),
        ({"field": "custom.n", "op": "contains", "value": 1}, {"custom": {"n": 12}}, False),
        ({"field": "priority", "op": "gt", "value": 2}, {"priority": 3}, True),
        ({"field": "priority", "op": "lte", "value": 2}, {"priority": "nan"}, False),
        ({"field": "priority", "op": "gte", "value": 1e308}, {"priority": 10**400}, True),
        (
            {"any": [{"field": "grade", "op": "eq", "value": "x"}, {"field": "name", "op": "exists"}]},
            {"name": "n"},
            True,
        ),
        (
            {"all": [{"field": "grade", "op": "eq", "value": "x"}, {"field": "name", "op": "exists"}]},
            {"name": "n"},
            False,
        ),
    ],
)
def test_condition_semantics(cond: object, lead: object, expected: bool) -> None:
    out: list[Any] = []
    parsed = parse_condition(cond, "when", out)
    assert parsed is not None, out
    assert evaluate(parsed, lead) is expected


def test_conditions_read_only_whitelisted_lead_attributes() -> None:
    class Guarded:
        segment = "sme"
        custom = MappingProxyType({"k": "v"})

        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"read {name}")

    out: list[Any] = []
    parsed = parse_condition({"field": "custom.k", "op": "eq", "value": "v"}, "w", out)
    assert parsed is not None and evaluate(parsed, Guarded())
    parsed = parse_condition({"field": "segment", "op": "eq", "value": "sme"}, "w", out)
    assert parsed is not None and evaluate(parsed, Guarded())
    assert parse_condition({"field": "secret", "op": "exists"}, "w", out) is None


# --- arbitrary JSON never breaks anything --------------------------------------------------------

SCRIPT_WORDS = ["start", "stages", "kind", "title", "text", "hints", "branches", "recommend", "objection"]
SCRIPT_WORDS += ["label", "to", "when", "why", "field", "op", "value", "all", "any", "not", "a", "z"]
SCRIPT_WORDS += sorted(KINDS | {"eq", "in", "contains", "gte", "lt", "exists", "segment", "custom.x"})
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from([*SCRIPT_WORDS, "{lead.name}", "{x}"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(SCRIPT_WORDS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_bodies_raise_only_script_invalid(body: object) -> None:
    try:
        tree = parse_script(body)
    except ScriptInvalid as exc:
        assert exc.problems
    else:
        for sid in tree.stages:
            render_stage(tree, sid, RenderContext(lead=body))


@settings(max_examples=300, deadline=None)
@given(json_values, json_values)
def test_arbitrary_conditions_and_leads_never_raise_anything_else(cond: object, lead: object) -> None:
    body = minimal()
    body["stages"]["a"]["recommend"] = [{"when": cond, "to": "z", "why": "because"}]
    body["stages"]["a"]["branches"].append({"label": "maybe", "to": "z", "when": cond})
    try:
        tree = parse_script(body)
    except ScriptInvalid as exc:
        assert all(p.path.startswith("stages.a.") for p in exc.problems)
        return
    for candidate in (lead, {"custom": lead, "segment": lead, "priority": lead}):
        assert len(recommend(tree, "a", candidate)) <= 1
        render_stage(tree, "a", RenderContext(lead=candidate))


SAMPLE_STAGE_IDS = sorted(load_sample("en")["stages"])


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(LANGS),
    st.sampled_from(SAMPLE_STAGE_IDS),
    st.sampled_from([*SCRIPT_WORDS, "extra"]),
    json_values,
)
def test_damaged_samples_raise_only_script_invalid(lang: str, sid: str, key: str, value: object) -> None:
    body = load_sample(lang)
    body["stages"][sid][key] = value
    try:
        tree = parse_script(body)
    except ScriptInvalid as exc:
        assert all(p.path.startswith("stages.") for p in exc.problems)
    else:
        render_stage(tree, sid, RenderContext(lead={"custom": value}, language=lang))


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_samples_handle_arbitrary_lead_data(custom: object) -> None:
    for lang in LANGS:
        tree = sample(lang)
        lead = {"segment": custom, "custom": {"current_services": custom, "monthly_telecom_spend": custom}}
        for sid in ("needs_closed", "offer", "close"):
            render_stage(tree, sid, RenderContext(lead=lead, language=lang))


# --- trail ---------------------------------------------------------------------------------------


def test_trail_records_visits_in_order_and_is_immutable() -> None:
    empty = ScriptTrail()
    t1 = empty.visit("opening", T0)
    t2 = t1.visit("permission", T0 + timedelta(seconds=12)).visit("purpose", T0 + timedelta(seconds=12))
    assert empty.visits == () and t1.path == ("opening",)
    assert t2.path == ("opening", "permission", "purpose")
    assert t2.to_json() == [
        {"stage": "opening", "at": "2024-05-06T09:00:00+00:00"},
        {"stage": "permission", "at": "2024-05-06T09:00:12+00:00"},
        {"stage": "purpose", "at": "2024-05-06T09:00:12+00:00"},
    ]
    assert ScriptTrail.from_json(t2.to_json()) == t2


def test_trail_refuses_going_back_in_time_and_naive_times() -> None:
    trail = ScriptTrail().visit("opening", T0)
    with pytest.raises(ValidationFailed):
        trail.visit("permission", T0 - timedelta(seconds=1))
    with pytest.raises(ValidationFailed):
        trail.visit("permission", datetime(2024, 5, 6, 9, 1))
    bad_order = [*copy.deepcopy(trail.to_json()), {"stage": "x", "at": "2024-05-06T08:00:00+00:00"}]
    for data in (bad_order, "nope", [{"stage": "x"}], [{"stage": 1, "at": "2024-05-06T08:00:00+00:00"}]):
        with pytest.raises(ValidationFailed):
            ScriptTrail.from_json(data)
