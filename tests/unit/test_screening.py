"""ivr.screening.decision: one table row per screening rule and variant, combination, and properties."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.phone import InvalidPhoneNumber, normalize
from ivr.schemas import ScreeningSettings
from ivr.screening import (
    AttestationResult,
    BulkVerdict,
    Decision,
    Evidence,
    RuleSpec,
    ScreeningConfig,
    TrunkPolicy,
    caller_key,
    compile_rules,
    screen,
)
from ivr.screening.decision import _plan

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CALLED = "02161234000"  # our DID in Shanghai
RULES = compile_rules(
    [
        RuleSpec(1, "prefix", "0755", "block", reason="spam gateway"),
        RuleSpec(2, "exact", "13912345678", "allow"),
        RuleSpec(3, "pattern", "_1XX0000XXXX", "challenge"),
        RuleSpec(4, "exact", "12345", "allow"),  # a short code with an outbound agreement
        RuleSpec(5, "exact", "02161234001", "allow"),  # our own branch office, a neighbour
        RuleSpec(6, "range", "18612340000", "block", value_end="18612349999", scope="trunk:bank"),
        RuleSpec(7, "exact", "13700000001", "allow"),
        RuleSpec(8, "prefix", "00196", "allow"),  # an allowlisted disguise (a partner's overseas line)
    ]
)
TRUNKS = [
    TrunkPolicy("bank", ("_955XX", "_0216XXXXXXX"), ("95533",)),
    TrunkPolicy("gw", (), ("+8610086", "96000")),  # any presentation of the number will do
    TrunkPolicy("broken", ("_1[",), ()),
]
CONFIG = ScreeningConfig.from_settings(ScreeningSettings(), TRUNKS)


def _screen(caller: str, trunk: str = "pstn", **kwargs: object) -> Decision:
    config = kwargs.pop("config", CONFIG)
    evidence = Evidence(caller=caller, called=str(kwargs.pop("called", CALLED)), trunk=trunk, now=NOW)
    return screen(evidence, RULES, config, **kwargs)  # type: ignore[arg-type]


TABLE = [
    # caller, trunk, action, codes
    ("13812345678", "pstn", "allow", ()),
    ("+8613812345678", "pstn", "allow", ()),
    ("008613812345678", "pstn", "allow", ()),
    ("8613812345678", "pstn", "allow", ()),
    ("01062345678", "pstn", "allow", ()),
    ("+14155552671", "pstn", "allow", ()),
    ("+442079460958", "pstn", "allow", ()),
    ("4008108888", "pstn", "allow", ()),
    # missing / anonymous / not a number
    ("", "pstn", "block", ("caller_empty",)),
    ("   ", "pstn", "block", ("caller_empty",)),
    ("unknown", "pstn", "block", ("caller_anonymous",)),
    ("Anonymous", "pstn", "block", ("caller_anonymous",)),
    ("RESTRICTED", "pstn", "block", ("caller_anonymous",)),
    ("private", "pstn", "block", ("caller_anonymous",)),
    ("abc", "pstn", "block", ("caller_not_numeric",)),
    ("138-1234-5678", "pstn", "block", ("caller_not_numeric",)),
    ("13812345678\r\nSet: X", "pstn", "block", ("caller_not_numeric",)),
    ("13812345678\n", "pstn", "block", ("caller_not_numeric",)),
    ("１３８１２３４５６７８", "pstn", "block", ("caller_not_numeric",)),  # full width: not from a switch
    ("١٣٨١٢٣٤٥٦٧٨", "pstn", "block", ("caller_not_numeric",)),  # Arabic-Indic digits pass str.isdigit
    ("++8613812345678", "pstn", "block", ("caller_not_numeric",)),
    ("13812345678;tag=1", "pstn", "block", ("caller_not_numeric",)),
    ("1" * 21, "pstn", "block", ("caller_too_long",)),
    # all zeros
    ("0", "pstn", "block", ("caller_all_zeros",)),
    ("0000000", "pstn", "block", ("caller_all_zeros",)),
    ("+000000", "pstn", "block", ("caller_all_zeros",)),
    ("00000000000", "gw", "block", ("caller_all_zeros",)),
    # protected service numbers, in every presentation
    ("110", "pstn", "block", ("protected_number_unauthorised",)),
    ("119", "pstn", "block", ("protected_number_unauthorised",)),
    ("10000", "pstn", "block", ("protected_number_unauthorised",)),
    ("10086", "pstn", "block", ("protected_number_unauthorised",)),
    ("95533", "pstn", "block", ("protected_number_unauthorised",)),
    ("+86110", "pstn", "block", ("protected_number_unauthorised",)),
    ("0086110", "pstn", "block", ("protected_number_unauthorised",)),
    ("86110", "pstn", "block", ("protected_number_unauthorised",)),
    ("+8695533", "pstn", "block", ("protected_number_unauthorised",)),
    ("95533", "gw", "block", ("protected_number_unauthorised",)),
    ("95533", "bank", "allow", ("protected_number_authorised",)),
    ("+8695533", "bank", "allow", ("protected_number_authorised",)),
    ("10086", "gw", "allow", ("protected_number_authorised",)),
    ("110", "bank", "block", ("protected_number_unauthorised", "trunk_caller_not_allowed")),
    ("96000", "gw", "allow", ("short_code_authorised",)),
    # short codes from other networks: only with an agreement (trunk or allow rule)
    ("12345", "pstn", "allow", ("rule_allow",)),
    ("95555", "pstn", "block", ("short_code_not_allowlisted",)),
    ("12315", "pstn", "block", ("short_code_not_allowlisted",)),
    # disguises
    ("00196123456789", "pstn", "allow", ("rule_allow",)),  # allow rule 8 covers this one
    ("00195123456789", "pstn", "challenge", ("disguise_prefix",)),
    ("00190861012345", "pstn", "challenge", ("disguise_prefix",)),
    ("+195123456789", "pstn", "challenge", ("disguise_prefix",)),
    ("1790013812345678", "pstn", "challenge", ("disguise_prefix",)),
    ("17911075512345678", "pstn", "challenge", ("disguise_prefix",)),
    ("+8617900138123456", "pstn", "challenge", ("disguise_prefix",)),
    # numbering plan
    ("010123456", "pstn", "block", ("caller_invalid_for_region",)),
    ("0311139", "pstn", "block", ("caller_invalid_for_region",)),
    ("1381234567", "pstn", "block", ("caller_invalid_for_region",)),
    ("138123456789", "pstn", "block", ("caller_invalid_for_region",)),
    ("1", "pstn", "block", ("caller_not_a_number",)),
    ("12", "pstn", "block", ("caller_too_short",)),
    ("+999123456", "pstn", "block", ("caller_unknown_region",)),
    ("+861381234567890", "pstn", "block", ("caller_too_long",)),
    # number rules
    ("075512345678", "pstn", "block", ("rule_block",)),
    ("+8675512345678", "pstn", "block", ("rule_block",)),
    ("13912345678", "pstn", "allow", ("rule_allow",)),
    ("13100001234", "pstn", "challenge", ("rule_challenge",)),
    ("18612341234", "bank", "block", ("trunk_caller_not_allowed", "rule_block")),
    ("18612341234", "pstn", "allow", ()),  # the range is scoped to trunk:bank
    # per-trunk screening group
    ("95588", "bank", "block", ("protected_number_unauthorised",)),  # protected, not authorised here
    ("95566", "bank", "block", ("short_code_not_allowlisted",)),  # the group restricts, never authorises
    ("02161234999", "bank", "challenge", ("neighbour_spoof",)),
    ("02161239999", "bank", "allow", ()),
    ("13812345678", "bank", "block", ("trunk_caller_not_allowed",)),
    ("13912345678", "bank", "block", ("trunk_caller_not_allowed", "rule_allow")),  # hard beats allow
    ("13812345678", "broken", "block", ("trunk_caller_not_allowed",)),  # bad patterns fail closed
    ("13812345678", "gw", "allow", ()),
    # neighbour spoofing
    ("02161234567", "pstn", "challenge", ("neighbour_spoof",)),
    ("+862161234999", "pstn", "challenge", ("neighbour_spoof",)),
    ("02161230000", "pstn", "allow", ()),  # shares 6 digits only
    ("02161234000", "pstn", "allow", ()),  # the called number itself is not a neighbour
    ("02161234001", "pstn", "allow", ("rule_allow",)),
    # combined findings: every reason kept, the strictest wins
    ("075561234000", "pstn", "block", ("rule_block",)),
    ("+8617911021612", "pstn", "challenge", ("disguise_prefix",)),
]


@pytest.mark.parametrize(("caller", "trunk", "action", "codes"), TABLE)
def test_screening_table(caller: str, trunk: str, action: str, codes: tuple[str, ...]) -> None:
    decision = _screen(caller, trunk)
    assert decision.codes == codes, decision
    assert decision.action == action


def test_reason_details_point_at_the_rule() -> None:
    (reason,) = _screen("075512345678").reasons
    assert (reason.code, reason.detail, reason.rule_id, reason.action) == (
        "rule_block",
        "spam gateway",
        1,
        "block",
    )
    (reason,) = _screen("13100001234").reasons
    assert reason.detail == "pattern _1XX0000XXXX" and reason.rule_id == 3


@pytest.mark.parametrize(
    ("overrides", "caller", "action"),
    [
        ({"missing_caller_action": "challenge"}, "", "challenge"),
        ({"missing_caller_action": "challenge"}, "anonymous", "challenge"),
        ({"missing_caller_action": "challenge"}, "abc\r\n", "challenge"),
        ({"missing_caller_action": "challenge"}, "0000", "block"),
        ({"disguise_action": "block"}, "00196123456789", "allow"),  # allow rule still wins
        ({"disguise_action": "block"}, "00195123456789", "block"),
        ({"neighbour_spoof_digits": 0}, "02161234567", "allow"),
        ({"neighbour_spoof_digits": 9}, "02161234567", "allow"),
        ({"neighbour_spoof_digits": 9}, "02161234009", "challenge"),
        ({"protected_numbers": ()}, "95533", "block"),  # then it is only an un-allowlisted short code
        # Without the disguise list, 17900 reads as a carrier-selection prefix before a valid mobile.
        ({"disguise_prefixes": ()}, "1790013812345678", "allow"),
    ],
)
def test_configurable_actions(overrides: dict[str, object], caller: str, action: str) -> None:
    fields = {
        "protected_numbers": CONFIG.protected_numbers,
        "disguise_prefixes": CONFIG.disguise_prefixes,
        "trunks": CONFIG.trunks,
        **overrides,
    }
    assert _screen(caller, config=ScreeningConfig(**fields)).action == action  # type: ignore[arg-type]


FLAGGED = BulkVerdict(7, 40, 25, (("bulk_caller", "7 calls"), ("bulk_prefix", "40 calls")))


@pytest.mark.parametrize(
    ("caller", "stats", "identity", "action", "codes"),
    [
        ("13812345678", FLAGGED, None, "challenge", ("bulk_caller", "bulk_prefix")),
        ("13812345678", BulkVerdict(1, 2, 2), None, "allow", ()),
        ("13912345678", FLAGGED, None, "allow", ("rule_allow",)),  # allowlisted numbers may burst
        ("075512345678", FLAGGED, None, "block", ("rule_block", "bulk_caller", "bulk_prefix")),
        ("13812345678", None, AttestationResult(True, "A", "verified"), "allow", ("stir_attestation_a",)),
        ("13812345678", None, AttestationResult(True, "B", "verified"), "allow", ("stir_attestation_b",)),
        ("13812345678", None, AttestationResult(True, "C", "verified"), "challenge", ("stir_attestation_c",)),
        (
            "13812345678",
            None,
            AttestationResult(False, None, "bad_signature"),
            "challenge",
            ("stir_unverified",),
        ),
        # A verified A attestation vouches for the exact number: no neighbour challenge.
        ("02161234567", None, AttestationResult(True, "A", "verified"), "allow", ("stir_attestation_a",)),
        (
            "02161234567",
            None,
            AttestationResult(True, "B", "verified"),
            "challenge",
            ("neighbour_spoof", "stir_attestation_b"),
        ),
        (
            "02161234567",
            FLAGGED,
            AttestationResult(True, "C", "verified"),
            "challenge",
            ("neighbour_spoof", "stir_attestation_c", "bulk_caller", "bulk_prefix"),
        ),
        (
            "110",
            FLAGGED,
            AttestationResult(True, "A", "verified"),
            "block",
            ("protected_number_unauthorised",),
        ),
    ],
)
def test_bulk_and_attestation(
    caller: str,
    stats: BulkVerdict | None,
    identity: AttestationResult | None,
    action: str,
    codes: tuple[str, ...],
) -> None:
    decision = _screen(caller, stats=stats, identity=identity)
    assert (decision.action, decision.codes[: len(codes)]) == (action, codes), decision


def test_bulk_action_block() -> None:
    config = ScreeningConfig(bulk_action="block")
    assert _screen("13812345678", stats=FLAGGED, config=config).action == "block"


def test_campaign_scope_and_unknown_trunk() -> None:
    rules = compile_rules([RuleSpec(1, "prefix", "138", "block", scope="campaign:9")])
    base = Evidence(caller="13812345678", called=CALLED, trunk="nope", now=NOW)
    assert screen(base, rules, CONFIG).action == "allow"
    scoped = Evidence(caller="13812345678", called=CALLED, trunk="nope", now=NOW, campaign_id="9")
    assert screen(scoped, rules, CONFIG).action == "block"


def test_config_from_settings_and_orm_shaped_trunks() -> None:
    class Row:
        name = "bank"
        allowed_caller_patterns = ("_955XX",)  # the ORM gives lists; any iterable will do
        authorised_protected_numbers = ("95533",)

    config = ScreeningConfig.from_settings(ScreeningSettings(fail_policy="block"), [Row()])
    assert config.fail_policy == "block" and config.trunks["bank"].authorised_protected_numbers == ("95533",)
    assert "110" in config.protected_numbers and "00196" in config.disguise_prefixes
    broken = ScreeningConfig(trunks={"t": TrunkPolicy("t", ("_1[", "138"))})
    assert broken.rejected_patterns == (("t", "'_1[' has a bad [...] class"),)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("13812345678", "8613812345678"),
        ("8613812345678", "8613812345678"),
        ("+14155552671", "14155552671"),
        ("075512345678", "8675512345678"),
        ("00196123", "196123"),
        ("", None),
        ("abc", None),
    ],
)
def test_caller_key(raw: str, key: str | None) -> None:
    assert caller_key(raw) == key


def test_internal_errors_follow_the_fail_policy() -> None:
    class Exploding:
        def match(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("boom")

    evidence = Evidence(caller="13812345678", called=CALLED, trunk="pstn", now=NOW)
    decision = screen(evidence, Exploding(), CONFIG)  # type: ignore[arg-type]
    assert (decision.action, decision.codes) == ("allow", ("screen_error",))
    strict = ScreeningConfig(fail_policy="block")
    assert screen(evidence, Exploding(), strict).action == "block"  # type: ignore[arg-type]


HOSTILE = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789+ \r\n\t\x00#*", max_size=30),
    st.from_regex(r"\+?(00|86|0|)1[0-9]{0,14}", fullmatch=True),
)


@settings(max_examples=400, deadline=None)
@given(caller=HOSTILE, called=HOSTILE, trunk=st.sampled_from(["pstn", "bank", "gw", "", "\r\n"]))
def test_screen_never_raises_and_is_deterministic(caller: str, called: str, trunk: str) -> None:
    evidence = Evidence(caller=caller, called=called, trunk=trunk, now=NOW, caller_name=caller)
    first = screen(evidence, RULES, CONFIG)
    assert first.action in ("allow", "challenge", "block")
    assert "screen_error" not in first.codes
    assert screen(evidence, RULES, CONFIG) == first
    if first.action == "allow" and not first.codes:
        assert caller.strip(" \t").lstrip("+").isdigit()


PREFIXES = [
    "",
    "0",
    "86",
    "+86",
    "0086",
    "1",
    "17900",
    "11",
    "12",
    "00",
    "+",
    "860",
    "+860",
    "400",
    "10",
    "13",
]
PREFIXES += ["2", "5", "9", "95", "6", "8"]


@settings(max_examples=3000, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), body=st.from_regex(r"[0-9]{0,17}", fullmatch=True))
def test_fast_numbering_plan_agrees_with_core_phone(prefix: str, body: str) -> None:
    """The fast path must give exactly core.phone.normalize's verdict whenever it answers."""
    text = prefix + body
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    plan = _plan("CN")
    fast = plan._fast(digits, plus)
    invalid = plan._fast_invalid(digits, plus)
    if not digits or (fast is None and invalid is None):
        return
    try:
        expected: tuple[str | None, str | None] = (None, normalize(text, "CN").e164[1:])
    except InvalidPhoneNumber as exc:
        expected = (exc.reason_code, None)
    assert (invalid, fast) == expected


@pytest.mark.parametrize(
    "text",
    ["13812345678", "+8613812345678", "008613812345678", "8613812345678", "01062345678", "075512345678"],
)
def test_common_forms_take_the_fast_path(text: str) -> None:
    plus = text.startswith("+")
    assert _plan("CN")._fast(text[1:] if plus else text, plus) is not None
