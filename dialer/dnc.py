"""Do-not-call lookups for the outbound side, read from the shared number-rule table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ivr.models import NumberRule


def dnc_matcher(session: Session, *, campaign_id: int, now: datetime) -> Callable[[str], bool]:
    """A predicate over E.164 numbers: True when a live global or campaign DNC rule covers it."""
    rows = session.execute(
        select(NumberRule.kind, NumberRule.value).where(
            NumberRule.purpose == "dnc",
            NumberRule.kind.in_(("exact", "prefix")),
            NumberRule.scope.in_(("global", f"campaign:{campaign_id}")),
            or_(NumberRule.expires_at.is_(None), NumberRule.expires_at > now),
        )
    ).all()
    exact = {value for kind, value in rows if kind == "exact"}
    prefixes = tuple(sorted({value for kind, value in rows if kind == "prefix"}))

    def is_dnc(e164: str) -> bool:
        return e164 in exact or (bool(prefixes) and e164.startswith(prefixes))

    return is_dnc
