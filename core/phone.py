"""Phone numbers: E.164 normalisation, validation, kind, region and timezone (one module used everywhere)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, shortnumberinfo
from phonenumbers import timezone as pn_timezone

_KIND = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
}


class InvalidPhoneNumber(ValueError):
    """A number we refuse, with a stable reason code for reports and APIs."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A valid number: E.164 form, national display form, region, kind and timezone(s)."""

    e164: str
    national: str
    region_code: str
    country_code: int
    kind: str
    timezone: str
    # Every zone phonenumbers lists; more than one for non-geographic numbers (US toll-free spans
    # Adak..New_York), so calling-hours checks should test them all, not only `timezone`.
    timezones: tuple[str, ...] = ()
    extension: str = ""  # "ext. 3" / "转123" in the input; not part of e164 or national, dial it after answer


def _clean(raw: str) -> str:
    # Full-width digits and punctuation (common in Chinese spreadsheets) fold to ASCII under NFKC.
    return unicodedata.normalize("NFKC", raw).strip()


def _trim_junk(text: str) -> str:
    """Drop labels before the number and notes after it ("电话: 138... (手机)")."""
    # phonenumbers reads letters as vanity digits, so a trailing "(mobile)" would become six extra digits;
    # lead lists carry notes far more often than vanity numbers, so we cut after the last digit.
    # An extension written after the number ("ext. 3") is the one tail we keep.
    if _EXTENSION.search(text) is None:
        end = max(i for i, ch in enumerate(text) if ch.isdigit())
        text = text[: end + 1]
    else:
        # phonenumbers knows "ext."/"x"/"#" but not the Chinese 分机 ("extension") / 转 ("transfer to").
        text = _CN_EXTENSION.sub(" ext. ", text)
    start = next(i for i, ch in enumerate(text) if ch.isdigit() or ch in "+(")
    return text[start:]


_CN_EXTENSION = re.compile(r"\s*(?:分机|转)\s*")
_EXTENSION = re.compile(r"\d\s*(?:ext\.?|x|#|分机|转)\s*\d{1,7}\s*$", re.IGNORECASE)


def normalize(raw: str, default_region: str = "CN") -> PhoneNumber:
    """Parse, validate and describe a number; raise InvalidPhoneNumber with the reason otherwise."""
    text = _clean(raw or "")
    if not text:
        raise InvalidPhoneNumber("empty", "phone number is empty")
    if not any(ch.isdigit() for ch in text):
        raise InvalidPhoneNumber("not_a_number", f"{raw!r} contains no digits")
    text = _trim_junk(text)
    if len(text) > 40:
        raise InvalidPhoneNumber("too_long", "phone number is longer than 40 characters")
    if text.startswith("00"):
        text = "+" + text[2:]  # international access prefix used in CN and most of the world
    try:
        parsed = phonenumbers.parse(text, default_region.upper())
    except NumberParseException as exc:
        code = {
            NumberParseException.INVALID_COUNTRY_CODE: "unknown_region",
            NumberParseException.NOT_A_NUMBER: "not_a_number",
            NumberParseException.TOO_SHORT_NSN: "too_short",
            NumberParseException.TOO_SHORT_AFTER_IDD: "too_short",
            NumberParseException.TOO_LONG: "too_long",
        }.get(exc.error_type, "not_a_number")
        raise InvalidPhoneNumber(code, f"{raw!r} is not a phone number: {exc}") from exc
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible == phonenumbers.ValidationResult.TOO_SHORT:
        raise InvalidPhoneNumber("too_short", f"{raw!r} is too short for its numbering plan")
    if possible == phonenumbers.ValidationResult.TOO_LONG:
        raise InvalidPhoneNumber("too_long", f"{raw!r} is too long for its numbering plan")
    if possible == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        raise InvalidPhoneNumber("unknown_region", f"{raw!r} has an unknown country code")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber("invalid_for_region", f"{raw!r} is not a valid number in its numbering plan")
    region = phonenumbers.region_code_for_number(parsed) or ""
    extension = parsed.extension or ""
    parsed.extension = None  # so that national, like e164, is the number alone
    zones = [z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    return PhoneNumber(
        e164=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        national=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
        region_code=region,
        country_code=parsed.country_code or 0,
        kind=_KIND.get(phonenumbers.number_type(parsed), "unknown"),
        timezone=zones[0] if zones else "",
        timezones=tuple(zones),
        extension=extension,
    )


def is_short_service_code(raw: str, region: str = "CN") -> bool:
    """True for emergency and service short codes such as 110, 119, 10086, 95533."""
    text = _clean(raw or "")
    if not text.isdigit() or len(text) > 8:
        return False
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except NumberParseException:
        return False
    return bool(shortnumberinfo.is_valid_short_number_for_region(parsed, region.upper()))
