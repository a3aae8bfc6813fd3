"""recordings.retention on PostgreSQL: expired audio deleted and audited, legal hold respected, the row and
its QA context kept, and playback of a purged recording answered with the error shape."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from config.settings import Settings
from core.clock import FixedClock
from core.db import unit_of_work
from core.models import AuditLog, Role
from dialer.models import Call
from recordings.models import QaReview, QaScorecard, Recording
from recordings.retention import PURGE_ACTION, PurgeReport, purge_expired
from recordings.storage import LocalStorage
from tests.asterisk_fixtures import FIXTURE_DIR
from tests.conftest import PASSWORD

SAMPLE = FIXTURE_DIR / "recording_sample.wav"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
METRICS = {"duration_s": 3.02, "longest_silence_s": 0.4, "talk_ratio": [0.8], "peaks": [0.1, 0.5]}


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store")


class Recordings:
    def __init__(self, session_factory: sessionmaker[Session], storage: LocalStorage) -> None:
        self.session_factory = session_factory
        self.storage = storage
        self.serial = 0

    def stored(
        self,
        *,
        purge_after: datetime | None,
        legal_hold: bool = False,
        status: str = "processed",
        agent_user_id: int | None = None,
        with_original: bool = True,
        storage_key: str | None = None,
    ) -> tuple[int, int]:
        """A processed recording whose audio is in storage; returns (recording id, call id)."""
        self.serial += 1
        key = storage_key or f"2026/10/01/{self.serial}-att-{self.serial}.mp3"
        original = f"2026/10/01/{self.serial}-att-{self.serial}.orig.wav" if with_original else ""
        for k in (key, original):
            if k and not k.startswith(("/", "..")):
                self.storage.put(k, SAMPLE)
        with unit_of_work(self.session_factory) as session:
            call = Call(direction="outbound", to_number="+8613800000000", agent_user_id=agent_user_id)
            session.add(call)
            session.flush()
            recording = Recording(
                call_id=call.id,
                storage_key=key,
                original_key=original,
                status=status,
                duration_s=3.02,
                metrics=METRICS,
                legal_hold=legal_hold,
                purge_after=purge_after,
            )
            session.add(recording)
            session.flush()
            return recording.id, call.id


@pytest.fixture
def recordings(session_factory: sessionmaker[Session], storage: LocalStorage) -> Recordings:
    return Recordings(session_factory, storage)


def run_purge(
    session_factory: sessionmaker[Session], storage: LocalStorage, *, now: datetime = NOW, limit: int = 500
) -> PurgeReport:
    with unit_of_work(session_factory) as session:
        return purge_expired(session, storage=storage, now=now, limit=limit)


def load(session_factory: sessionmaker[Session], recording_id: int) -> Recording:
    with session_factory() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None
        session.expunge(recording)
        return recording


def purge_audits(session_factory: sessionmaker[Session]) -> list[AuditLog]:
    with session_factory() as session:
        rows = list(
            session.scalars(select(AuditLog).where(AuditLog.action == PURGE_ACTION).order_by(AuditLog.id))
        )
        session.expunge_all()
        return rows


def test_expired_recording_audio_is_deleted_row_and_metrics_kept_and_audited(
    session_factory: sessionmaker[Session], recordings: Recordings, storage: LocalStorage
) -> None:
    rid, call_id = recordings.stored(purge_after=NOW - timedelta(days=1))
    before = load(session_factory, rid)

    report = run_purge(session_factory, storage)

    assert report == PurgeReport(purged=(rid,))
    row = load(session_factory, rid)
    assert row.status == "purged"
    assert row.metrics == METRICS and row.duration_s == 3.02  # QA context stays
    assert not storage.exists(before.storage_key) and not storage.exists(before.original_key)
    [entry] = purge_audits(session_factory)
    assert (entry.actor_user_id, entry.actor_label) == (None, "system:retention")
    assert (entry.entity_type, entry.entity_id) == ("recording", str(rid))
    assert entry.details["call_id"] == call_id and entry.details["previous_status"] == "processed"
    assert sorted(entry.details["deleted"]) == sorted([before.storage_key, before.original_key])

    # Idempotent: a second run finds nothing to do and writes no second audit row.
    assert run_purge(session_factory, storage) == PurgeReport()
    assert len(purge_audits(session_factory)) == 1


def test_legal_hold_blocks_the_purge_until_it_is_lifted(
    session_factory: sessionmaker[Session], recordings: Recordings, storage: LocalStorage
) -> None:
    held, _ = recordings.stored(purge_after=NOW - timedelta(days=30), legal_hold=True)
    key = load(session_factory, held).storage_key

    report = run_purge(session_factory, storage)

    assert report == PurgeReport(held=1)
    assert load(session_factory, held).status == "processed" and storage.exists(key)
    assert purge_audits(session_factory) == []

    with unit_of_work(session_factory) as session:
        row = session.get(Recording, held)
        assert row is not None
        row.legal_hold = False
    assert run_purge(session_factory, storage).purged == (held,)
    assert not storage.exists(key)


def test_only_expired_finished_recordings_are_purged(
    session_factory: sessionmaker[Session], recordings: Recordings, storage: LocalStorage
) -> None:
    expired, _ = recordings.stored(purge_after=NOW)  # purge_after <= now: due exactly now
    future, _ = recordings.stored(purge_after=NOW + timedelta(seconds=1))
    forever, _ = recordings.stored(purge_after=None)
    pending, _ = recordings.stored(purge_after=NOW - timedelta(days=1), status="pending")
    corrupt, _ = recordings.stored(
        purge_after=NOW - timedelta(days=1), status="corrupt", storage_key="out-1.wav"
    )

    report = run_purge(session_factory, storage)

    assert sorted(report.purged) == sorted([expired, corrupt])
    statuses = {
        rid: load(session_factory, rid).status for rid in (expired, future, forever, pending, corrupt)
    }
    assert statuses == {
        expired: "purged",
        future: "processed",
        forever: "processed",
        pending: "pending",  # ingest owns it
        corrupt: "purged",
    }


def test_limit_and_hostile_keys_never_break_a_run(
    session_factory: sessionmaker[Session], recordings: Recordings, storage: LocalStorage
) -> None:
    hostile, _ = recordings.stored(
        purge_after=NOW - timedelta(days=3),
        status="rejected",
        storage_key="../../etc/passwd",
        with_original=False,
    )
    first, _ = recordings.stored(purge_after=NOW - timedelta(days=2))
    second, _ = recordings.stored(purge_after=NOW - timedelta(days=1))

    assert run_purge(session_factory, storage, limit=2).purged == (hostile, first)  # oldest first
    assert run_purge(session_factory, storage, limit=2).purged == (second,)
    audit = {entry.entity_id: entry.details for entry in purge_audits(session_factory)}
    assert audit[str(hostile)]["invalid_keys"] == ["../../etc/passwd"]
    assert audit[str(hostile)]["deleted"] == []
    assert Path("/etc/passwd").exists()


def test_purged_recording_playback_is_not_found_with_the_error_shape_and_qa_review_stays(
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FixedClock,
    recordings: Recordings,
    storage: LocalStorage,
    make_user: Callable[..., int],
) -> None:
    qa = make_user("qa.retention", Role.QA)
    agent = make_user("agent.retention", Role.AGENT)
    rid, call_id = recordings.stored(purge_after=NOW - timedelta(days=1), agent_user_id=agent)
    with unit_of_work(session_factory) as session:
        card = QaScorecard(name="retention card")
        session.add(card)
        session.flush()
        session.add(
            QaReview(
                call_id=call_id,
                scorecard_id=card.id,
                reviewer_user_id=qa,
                agent_user_id=agent,
                total_pct=87.5,
            )
        )

    app = create_app(settings, session_factory=session_factory, clock=clock, recording_storage=storage)
    with TestClient(app, raise_server_exceptions=False) as client:
        token = client.post("/api/v1/auth/login", json={"username": "qa.retention", "password": PASSWORD})
        client.cookies.clear()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert client.get(f"/api/v1/recordings/{rid}/audio", headers=headers).status_code == 200

        run_purge(session_factory, storage)

        audio = client.get(f"/api/v1/recordings/{rid}/audio", headers=headers)
        assert audio.status_code in (404, 410), audio.text
        body = audio.json()
        assert set(body) == {"error_id", "message", "details"}
        assert body["error_id"] in ("not_found", "gone")
        meta = client.get(f"/api/v1/recordings/{rid}", headers=headers)
        assert meta.status_code == 200
        assert meta.json()["status"] == "purged" and meta.json()["metrics"] == METRICS

    with session_factory() as session:
        review = session.scalars(select(QaReview).where(QaReview.call_id == call_id)).one()
        assert review.total_pct == 87.5
