"""Do-not-call lookups for the outbound side, read from the shared number-rule table."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from ivr.models import NumberRule


def dnc_matcher(
    session: Session, *, campaign_id: int, now: datetime, numbers: Iterable[str] | None = None
) -> Callable[[str], bool]:
    """A predicate over E.164 numbers: True when a live global or campaign DNC rule covers it.

    With `numbers` (the ones about to be checked) only their exact rules are read: a national DNC
    register holds millions of numbers, and loading them all for every hopper pass or preview request
    was the cost of the check (bench/api_load.py). Prefix rules are few and always loaded.
    """
    live = (
        NumberRule.purpose == "dnc",
        NumberRule.scope.in_(("global", f"campaign:{campaign_id}")),
        or_(NumberRule.expires_at.is_(None), NumberRule.expires_at > now),
    )
    wanted = None if numbers is None else sorted(set(numbers))
    exact_rule: ColumnElement[bool] = NumberRule.kind == "exact"
    if wanted is not None:
        exact_rule = and_(exact_rule, NumberRule.value.in_(wanted)) if wanted else false()
    # One round trip for both kinds: this runs on every preview request (bench/api_load.py).
    rows = session.execute(
        select(NumberRule.kind, NumberRule.value).where(or_(exact_rule, NumberRule.kind == "prefix"), *live)
    ).all()
    exact = {value for kind, value in rows if kind == "exact"}
    prefixes = tuple(sorted({value for kind, value in rows if kind == "prefix"}))

    def is_dnc(e164: str) -> bool:
        if wanted is not None and e164 not in wanted:
            raise ValueError(f"{e164} was not among the numbers this matcher was built for")
        return e164 in exact or (bool(prefixes) and e164.startswith(prefixes))

    return is_dnc
