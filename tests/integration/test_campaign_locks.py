"""Two dialer engines never own one campaign; an engine that stops gives its campaigns back."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work
from dialer.engine import CampaignLocks


def test_advisory_lock_is_exclusive_and_released(session_factory: sessionmaker[Session]) -> None:
    first, second = CampaignLocks(session_factory), CampaignLocks(session_factory)
    assert first.acquire(42)
    # Commits elsewhere in the process must not move the lock to another pooled connection.
    for _ in range(5):
        with unit_of_work(session_factory) as session:
            session.connection()
    assert not second.acquire(42)
    assert second.acquire(43)
    first.release_all()
    assert second.acquire(42)
    second.release_all()
