"""core.phone: normalisation of the formats found in real lead lists, reason codes, short service codes."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.phone import InvalidPhoneNumber, PhoneNumber, is_short_service_code, normalize

CN_MOBILE = "+8613812345678"
BEIJING_FIXED = "+861062345678"


@pytest.mark.parametrize(
    ("raw", "e164", "kind"),
    [
        ("138 1234 5678", CN_MOBILE, "mobile"),
        ("13812345678", CN_MOBILE, "mobile"),
        ("+86 138-1234-5678", CN_MOBILE, "mobile"),
        ("0086 13812345678", CN_MOBILE, "mobile"),
        ("8613812345678", CN_MOBILE, "mobile"),
        ("１３８１２３４５６７８", CN_MOBILE, "mobile"),  # full-width digits from a Chinese spreadsheet
        ("＋８６ １３８－１２３４－５６７８", CN_MOBILE, "mobile"),
        ("  13812345678\t", CN_MOBILE, "mobile"),
        ("tel: 13812345678 ;", CN_MOBILE, "mobile"),
        ("phone: 138-1234-5678 (mobile)", CN_MOBILE, "mobile"),
        ("电话：138-1234-5678（手机）", CN_MOBILE, "mobile"),
        ("Tel 0086-138 1234 5678.", CN_MOBILE, "mobile"),
        ("010-62345678", BEIJING_FIXED, "fixed"),
        ("(010) 6234 5678", BEIJING_FIXED, "fixed"),
        ("+86 10 6234 5678", BEIJING_FIXED, "fixed"),
        ("010-62345678转123", BEIJING_FIXED, "fixed"),
        ("400 810 8888", "+864008108888", "shared_cost"),
        ("800 810 8888", "+868008108888", "toll_free"),
        ("+1 415 555 2671", "+14155552671", "fixed_or_mobile"),
        ("+1 (415) 555-2671 ext. 3", "+14155552671", "fixed_or_mobile"),
        ("+44 20 7946 0958", "+442079460958", "fixed"),
    ],
)
def test_normalize_accepts_real_world_formats(raw: str, e164: str, kind: str) -> None:
    number = normalize(raw)
    assert number.e164 == e164
    assert number.kind == kind


def test_cn_mobile_is_fully_described() -> None:
    assert normalize("138 1234 5678") == PhoneNumber(
        e164=CN_MOBILE,
        national="138 1234 5678",
        region_code="CN",
        country_code=86,
        kind="mobile",
        timezone="Asia/Shanghai",
        timezones=("Asia/Shanghai",),
    )


def test_us_number_with_default_region_us() -> None:
    number = normalize("(415) 555-2671", default_region="US")
    assert (number.e164, number.region_code, number.country_code) == ("+14155552671", "US", 1)
    assert number.timezone == "America/Los_Angeles"


@pytest.mark.parametrize(
    ("raw", "extension"),
    [
        ("010-62345678 分机 8", "8"),
        ("010-62345678转123", "123"),
        ("+1 (415) 555-2671 ext. 3", "3"),
        ("13812345678", ""),
    ],
)
def test_extension_is_kept_apart_from_the_number(raw: str, extension: str) -> None:
    number = normalize(raw)
    assert number.extension == extension
    assert "ext" not in number.national
    assert normalize(number.e164) == dataclasses.replace(number, extension="")


def test_non_geographic_number_lists_every_zone() -> None:
    # US toll-free numbers are country-wide; calling-hours checks must see all the zones.
    number = normalize("+1 800 555 0199")
    assert number.kind == "toll_free"
    assert number.timezone == number.timezones[0]
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(number.timezones)


def test_phone_number_is_frozen() -> None:
    number = normalize("13812345678")
    with pytest.raises(dataclasses.FrozenInstanceError):
        number.e164 = "+1"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("", "CN", "empty"),
        ("   ", "CN", "empty"),
        ("abc", "CN", "not_a_number"),
        ("+", "CN", "not_a_number"),
        ("+0", "CN", "not_a_number"),
        ("12345", "CN", "invalid_for_region"),
        ("1381234567", "CN", "invalid_for_region"),  # one digit short of a CN mobile
        ("138123456789", "CN", "invalid_for_region"),
        ("021-1234", "CN", "invalid_for_region"),
        ("++86 138", "CN", "too_short"),
        ("00861381234567800", "CN", "too_long"),
        ("1" * 41, "CN", "too_long"),
        ("+999 1234", "CN", "unknown_region"),
        ("13812345678", "XX", "unknown_region"),
    ],
)
def test_normalize_rejects_with_reason_code(raw: str, region: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as info:
        normalize(raw, region)
    assert info.value.reason_code == reason
    assert info.value.message


def test_invalid_phone_number_is_a_value_error() -> None:
    # Callers that only know ValueError (pydantic validators) still catch it.
    assert issubclass(InvalidPhoneNumber, ValueError)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("110", "CN", True),  # police
        ("119", "CN", True),  # fire
        ("120", "CN", True),  # ambulance
        ("10086", "CN", True),  # China Mobile
        ("95533", "CN", True),  # China Construction Bank
        ("１１０", "CN", True),
        ("13812345678", "CN", False),
        ("911", "CN", False),
        ("911", "US", True),
        ("110", "US", False),
        ("", "CN", False),
        ("11O", "CN", False),  # letter O, not zero
        ("123456789", "CN", False),
    ],
)
def test_is_short_service_code(raw: str, region: str, expected: bool) -> None:
    assert is_short_service_code(raw, region) is expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_normalize_only_raises_invalid_phone_number(raw: str) -> None:
    try:
        number = normalize(raw)
    except InvalidPhoneNumber as exc:
        assert exc.reason_code in {
            "empty",
            "not_a_number",
            "too_short",
            "too_long",
            "invalid_for_region",
            "unknown_region",
        }
    else:
        assert number.e164.startswith("+")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789+-() .#x转１２３", max_size=24), st.sampled_from(["CN", "US", "GB", "DE"]))
def test_digit_soup_is_refused_cleanly_or_normalised_idempotently(raw: str, region: str) -> None:
    with contextlib.suppress(InvalidPhoneNumber):
        number = normalize(raw, region)
        assert normalize(number.e164, "CN") == dataclasses.replace(number, extension="")


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True),
        st.from_regex(r"0(10|2[0-9])[2-8][0-9]{7}", fullmatch=True),
        st.from_regex(r"\+1[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True),
    )
)
def test_normalize_of_e164_is_idempotent(raw: str) -> None:
    try:
        first = normalize(raw)
    except InvalidPhoneNumber:
        return
    assert normalize(first.e164) == first
    assert normalize(first.e164, "US") == first  # a leading + makes the default region irrelevant


def test_strategy_for_idempotence_yields_valid_numbers() -> None:
    # Guard that the idempotence test is not vacuous: its shapes really produce valid numbers.
    assert normalize("13912345678").kind == "mobile"
    assert normalize("02161234567").kind == "fixed"
