"""DNC lookups read only the rules of the numbers being checked, plus every prefix rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work
from dialer.dnc import dnc_matcher
from ivr.models import NumberRule

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


def test_targeted_matcher_agrees_with_the_full_one(session_factory: sessionmaker[Session]) -> None:
    with unit_of_work(session_factory) as session:
        session.add_all(
            [
                NumberRule(purpose="dnc", kind="exact", value="+8613800000001", action="block"),
                NumberRule(
                    purpose="dnc", kind="exact", value="+8613800000002", action="block", scope="campaign:9"
                ),
                NumberRule(
                    purpose="dnc",
                    kind="exact",
                    value="+8613800000003",
                    action="block",
                    expires_at=NOW - timedelta(days=1),
                ),
                NumberRule(purpose="dnc", kind="prefix", value="+86170", action="block"),
                NumberRule(purpose="screening", kind="exact", value="+8613800000004", action="block"),
            ]
        )
    numbers = ["+8613800000001", "+8613800000002", "+8613800000003", "+8613800000004", "+8617012345678"]
    with unit_of_work(session_factory) as session:
        full = dnc_matcher(session, campaign_id=1, now=NOW)
        targeted = dnc_matcher(session, campaign_id=1, now=NOW, numbers=numbers)
        assert (
            [full(n) for n in numbers] == [targeted(n) for n in numbers] == [True, False, False, False, True]
        )
        assert dnc_matcher(session, campaign_id=9, now=NOW, numbers=numbers[1:2])(numbers[1])
        with pytest.raises(ValueError):
            targeted("+8613900000000")  # not asked for: an answer would be a guess
