"""recordings.ingest on PostgreSQL with real WAV files: sandbox tones, the Asterisk fixture, bad files,
hostile file names, concurrent runs, and the Celery task in eager mode."""

from __future__ import annotations

import os
import shutil
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core.clock import FixedClock
from core.db import unit_of_work
from core.tasks import make_celery
from dialer.models import Attempt, Call, Campaign, Lead
from dialer.sandbox.calls import write_tone_recording
from recordings.ingest import IngestPolicy, IngestReport, ingest_pending, spool_file_name
from recordings.models import Recording
from recordings.processing import WAV_HEADER_BYTES
from recordings.storage import LocalStorage
from recordings.tasks import INGEST_TASK, PURGE_TASK, beat_schedule, register, spool_dir_of
from tests.asterisk_fixtures import FIXTURE_DIR

SAMPLE = FIXTURE_DIR / "recording_sample.wav"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CALL_ENDED = NOW - timedelta(minutes=2)
HAS_FFMPEG = shutil.which("ffmpeg") is not None
PLAYBACK = ("mp3", "audio/mpeg") if HAS_FFMPEG else ("wav", "audio/wav")


class CountingStorage(LocalStorage):
    """LocalStorage that counts puts per key (thread-safe) and can be told to fail for some keys."""

    def __init__(self, root: Path, *, fail_keys: tuple[str, ...] = ()) -> None:
        super().__init__(root)
        self.puts: Counter[str] = Counter()
        self.fail_keys = fail_keys
        self._lock = threading.Lock()

    def put(self, key: str, src_path: Path) -> None:
        if any(part in key for part in self.fail_keys):
            raise OSError(f"disk full while storing {key}")
        with self._lock:
            self.puts[key] += 1
        super().put(key, src_path)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "incoming"
    path.mkdir()
    return path


@pytest.fixture
def storage(tmp_path: Path) -> CountingStorage:
    return CountingStorage(tmp_path / "store")


class Calls:
    """Creates answered calls the way dialer.ledger.record_finished leaves them: a pending recording."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self.serial = 0
        with unit_of_work(session_factory) as session:
            campaign = Campaign(name="recordings", caller_id_number="+861062345678")
            session.add(campaign)
            session.flush()
            self.campaign_id = campaign.id

    def pending(self, file_name: str | None = None, *, ended_at: datetime = CALL_ENDED) -> Recording:
        self.serial += 1
        attempt_id = f"att-{self.serial:032x}"
        number = f"+8613800{self.serial:06d}"
        with unit_of_work(self.session_factory) as session:
            lead = Lead(campaign_id=self.campaign_id, phone_e164=number)
            session.add(lead)
            session.flush()
            session.add(
                Attempt(id=attempt_id, campaign_id=self.campaign_id, lead_id=lead.id, phone_e164=number)
            )
            session.flush()
            call = Call(direction="outbound", attempt_id=attempt_id, to_number=number, ended_at=ended_at)
            session.add(call)
            session.flush()
            recording = Recording(
                call_id=call.id,
                attempt_id=attempt_id,
                storage_key=file_name or f"out-{number[1:]}-{attempt_id}-b.wav",
                created_at=ended_at,
            )
            session.add(recording)
            session.flush()
            session.expunge(recording)
        return recording


@pytest.fixture
def calls(session_factory: sessionmaker[Session]) -> Calls:
    return Calls(session_factory)


def run_ingest(
    session_factory: sessionmaker[Session],
    storage: LocalStorage,
    spool: Path,
    *,
    now: datetime = NOW,
    limit: int = 50,
    policy: IngestPolicy | None = None,
) -> IngestReport:
    with unit_of_work(session_factory) as session:
        return ingest_pending(
            session, storage=storage, spool_dir=spool, now=now, limit=limit, policy=policy or IngestPolicy()
        )


def load(session_factory: sessionmaker[Session], recording_id: int) -> Recording:
    with session_factory() as session:
        recording = session.get(Recording, recording_id)
        assert recording is not None
        session.expunge(recording)
        return recording


def write_empty_wav(path: Path) -> Path:
    """What MixMonitor leaves for a call without audio: a RIFF header and a zero-length data chunk."""
    write_tone_recording(path, 0.5, seed=0)
    data = bytearray(path.read_bytes()[:WAV_HEADER_BYTES])
    data[4:8] = (WAV_HEADER_BYTES - 8).to_bytes(4, "little")
    data[40:44] = (0).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


# --- happy paths ------------------------------------------------------------------------------------


def test_sandbox_recording_is_processed_stored_and_removed_from_the_spool(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    pending = calls.pending()
    write_tone_recording(spool / pending.storage_key, 4.0, seed=3)

    report = run_ingest(session_factory, storage, spool, policy=IngestPolicy(retention_days=30))

    assert report.processed == (pending.id,) and report.handled == 1
    row = load(session_factory, pending.id)
    ext, content_type = PLAYBACK
    assert row.status == "processed"
    assert row.storage_key == f"2026/11/23/{pending.call_id}-{pending.attempt_id}.{ext}"
    assert row.content_type == content_type
    assert row.original_key == ""  # keep_original is off
    assert row.duration_s == pytest.approx(4.0)
    assert row.purge_after == NOW + timedelta(days=30)
    assert len(row.metrics["peaks"]) == 400 and 0 < row.metrics["talk_ratio"][0] < 1
    assert row.metrics["longest_silence_s"] > 0  # QA sampling reads this key
    assert row.metrics["source_file"] == pending.storage_key
    assert (row.metrics["sample_rate"], row.metrics["channels"]) == (8000, 1)
    assert storage.exists(row.storage_key) and storage.size(row.storage_key) > 0
    assert not (spool / pending.storage_key).exists()
    assert list(spool.iterdir()) == []


def test_asterisk_fixture_with_keep_original_stores_both_copies(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    pending = calls.pending("out-1000-testpbx-1795350069.1.wav")
    shutil.copyfile(SAMPLE, spool / pending.storage_key)

    report = run_ingest(session_factory, storage, spool, policy=IngestPolicy(keep_original=True))

    assert report.processed == (pending.id,)
    row = load(session_factory, pending.id)
    assert row.duration_s == pytest.approx(3.02)
    base = f"2026/11/23/{pending.call_id}-{pending.attempt_id}"
    if HAS_FFMPEG:
        assert (row.storage_key, row.original_key) == (f"{base}.mp3", f"{base}.orig.wav")
        with storage.open(row.original_key) as fh:
            assert fh.read() == SAMPLE.read_bytes()
        assert storage.size(row.storage_key) < SAMPLE.stat().st_size / 3
    else:  # the WAV is the playback copy and is stored once
        assert (row.storage_key, row.original_key) == (f"{base}.wav", "")
    assert not (spool / pending.storage_key).exists()


def test_a_second_run_is_a_no_op(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    pending = calls.pending()
    write_tone_recording(spool / pending.storage_key, 1.0, seed=1)
    run_ingest(session_factory, storage, spool)
    first = load(session_factory, pending.id)

    again = run_ingest(session_factory, storage, spool, now=NOW + timedelta(hours=1))

    assert again == IngestReport()
    assert load(session_factory, pending.id).metrics == first.metrics
    assert sum(storage.puts.values()) == 1


def test_two_recordings_of_one_call_get_distinct_keys(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    first = calls.pending()
    with unit_of_work(session_factory) as session:
        again = Recording(
            call_id=first.call_id,
            attempt_id=first.attempt_id,
            storage_key=f"{first.storage_key[:-4]}-2.wav",
            created_at=CALL_ENDED,
        )
        session.add(again)
        session.flush()
        second_id = again.id
    for name in (first.storage_key, f"{first.storage_key[:-4]}-2.wav"):
        write_tone_recording(spool / name, 0.8, seed=7)

    report = run_ingest(session_factory, storage, spool)

    assert report.processed == (first.id, second_id)
    keys = {load(session_factory, rid).storage_key for rid in (first.id, second_id)}
    ext = PLAYBACK[0]
    base = f"2026/11/23/{first.call_id}-{first.attempt_id}"
    assert keys == {f"{base}.{ext}", f"{base}-r{second_id}.{ext}"}
    assert all(storage.exists(key) for key in keys)


# --- bad files --------------------------------------------------------------------------------------


def test_empty_mixmonitor_wav_is_marked_empty_and_nothing_is_stored(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    pending = calls.pending()
    path = write_empty_wav(spool / pending.storage_key)
    assert path.stat().st_size == WAV_HEADER_BYTES

    report = run_ingest(session_factory, storage, spool)

    assert report.empty == (pending.id,)
    row = load(session_factory, pending.id)
    assert (row.status, row.duration_s, row.purge_after) == ("empty", 0.0, None)
    assert row.metrics["problem"]["code"] == "empty"
    assert row.storage_key == pending.storage_key and row.original_key == ""
    assert storage.puts == Counter()
    assert not path.exists()  # nothing worth keeping


def test_corrupt_file_is_marked_and_its_bytes_kept_as_evidence(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    pending = calls.pending()
    garbage = b"RIFF\xff\xff\xff\x7fWAVEjunk" + os.urandom(300)
    (spool / pending.storage_key).write_bytes(garbage)

    report = run_ingest(session_factory, storage, spool, policy=IngestPolicy(retention_days=7))

    assert report.corrupt == (pending.id,)
    row = load(session_factory, pending.id)
    assert row.status == "corrupt" and row.duration_s == 0.0
    assert row.metrics["problem"]["code"] == "corrupt"
    assert row.original_key == f"2026/11/23/{pending.call_id}-{pending.attempt_id}.orig.wav"
    with storage.open(row.original_key) as fh:
        assert fh.read() == garbage
    assert row.purge_after == NOW + timedelta(days=7)  # retention removes the evidence too
    assert not (spool / pending.storage_key).exists()


def test_missing_file_waits_for_the_grace_period_then_is_marked_missing(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    recent = calls.pending(ended_at=NOW - timedelta(minutes=1))
    old = calls.pending(ended_at=NOW - timedelta(hours=1))
    policy = IngestPolicy(missing_grace=timedelta(minutes=10))

    report = run_ingest(session_factory, storage, spool, policy=policy)

    assert (report.waiting, report.missing) == ((recent.id,), (old.id,))
    assert load(session_factory, recent.id).status == "pending"
    row = load(session_factory, old.id)
    assert row.status == "missing"
    assert row.metrics["problem"]["code"] == "missing"
    assert old.storage_key in row.metrics["problem"]["message"]

    # The late file arrives within the grace period: it is processed normally.
    write_tone_recording(spool / recent.storage_key, 1.0, seed=2)
    later = run_ingest(session_factory, storage, spool, now=NOW + timedelta(minutes=5), policy=policy)
    assert later.processed == (recent.id,)


@pytest.mark.parametrize(
    "hostile",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "../incoming/out-1.wav",
        "sub/out-2.wav",
        ".hidden.wav",
        "..",
        "C:\\spool\\out-4.wav",
        "/var/spool/asterisk/monitor/out-5.wav",  # a full path is refused unless the PBX spool is configured
    ],
)
def test_hostile_file_names_are_rejected_without_touching_the_file_system(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage, hostile: str
) -> None:
    # Something the traversal would reach if it were followed.
    target = spool.parent / "incoming" / "out-1.wav"
    write_tone_recording(target, 0.5, seed=0)
    pending = calls.pending(hostile)

    report = run_ingest(session_factory, storage, spool)

    assert report.rejected == (pending.id,)
    row = load(session_factory, pending.id)
    assert row.status == "rejected"
    assert row.metrics["problem"]["code"] == "rejected"
    assert row.storage_key == hostile  # kept as evidence; playback refuses it (InvalidStorageKey)
    assert storage.puts == Counter()
    assert target.exists()


def test_symlink_in_the_spool_is_rejected(
    session_factory: sessionmaker[Session],
    calls: Calls,
    spool: Path,
    storage: CountingStorage,
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.wav"
    write_tone_recording(secret, 0.5, seed=0)
    pending = calls.pending()
    (spool / pending.storage_key).symlink_to(secret)

    report = run_ingest(session_factory, storage, spool)

    assert report.rejected == (pending.id,)
    assert "not a regular file" in load(session_factory, pending.id).metrics["problem"]["message"]
    assert storage.puts == Counter() and secret.exists()


def test_full_asterisk_path_is_accepted_only_inside_the_configured_pbx_spool(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    policy = IngestPolicy(pbx_spool_dir="/var/spool/asterisk/monitor")
    good = calls.pending("/var/spool/asterisk/monitor/out-1000-testpbx-1795350069.1.wav")
    shutil.copyfile(SAMPLE, spool / "out-1000-testpbx-1795350069.1.wav")
    elsewhere = calls.pending("/var/spool/asterisk/monitor/../../../etc/passwd")
    sneaky = calls.pending("/var/spool/asterisk/monitor//out-9.wav")

    report = run_ingest(session_factory, storage, spool, policy=policy)

    assert report.processed == (good.id,)
    assert report.rejected == (elsewhere.id, sneaky.id)
    assert spool_file_name("out-1.wav") == "out-1.wav"
    with pytest.raises(ValueError):
        spool_file_name("/var/spool/asterisk/monitor/out-1.wav")


# --- failures, rollback, concurrency ----------------------------------------------------------------


def test_a_storage_failure_does_not_stop_the_batch_and_gives_up_after_max_attempts(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, tmp_path: Path
) -> None:
    failing = calls.pending()
    fine = calls.pending()
    for pending in (failing, fine):
        write_tone_recording(spool / pending.storage_key, 1.0, seed=4)
    storage = CountingStorage(tmp_path / "store", fail_keys=(f"{failing.call_id}-{failing.attempt_id}",))
    policy = IngestPolicy(max_attempts=2)

    first = run_ingest(session_factory, storage, spool, policy=policy)

    assert (first.errors, first.processed) == ((failing.id,), (fine.id,))
    row = load(session_factory, failing.id)
    assert row.status == "pending"
    assert row.metrics["ingest_attempts"] == 1 and "disk full" in row.metrics["ingest_error"]
    assert (spool / failing.storage_key).exists()  # kept for the retry
    assert not (spool / fine.storage_key).exists()

    second = run_ingest(session_factory, storage, spool, policy=policy)

    assert second.failed == (failing.id,)
    row = load(session_factory, failing.id)
    assert row.status == "failed" and row.metrics["ingest_attempts"] == 2
    assert (spool / failing.storage_key).exists()  # an operator can look at it


def test_a_rolled_back_run_keeps_the_spool_file_and_the_row_pending(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    pending = calls.pending()
    path = spool / pending.storage_key
    write_tone_recording(path, 1.0, seed=5)

    with session_factory() as session:
        report = ingest_pending(session, storage=storage, spool_dir=spool, now=NOW)
        assert report.processed == (pending.id,)
        session.rollback()
    assert path.exists()
    assert load(session_factory, pending.id).status == "pending"

    # The redo overwrites the same deterministic key, then the commit removes the spool file.
    redo = run_ingest(session_factory, storage, spool)
    assert redo.processed == (pending.id,)
    row = load(session_factory, pending.id)
    assert storage.puts[row.storage_key] == 2 and storage.exists(row.storage_key)
    assert not path.exists()


def test_rows_locked_by_a_running_ingest_are_skipped_by_another(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    rows = [calls.pending() for _ in range(4)]
    for index, pending in enumerate(rows):
        write_tone_recording(spool / pending.storage_key, 0.6, seed=index)

    with session_factory() as first:
        # The first run has claimed (and processed) two rows but not committed yet: its locks are held.
        claimed = ingest_pending(first, storage=storage, spool_dir=spool, now=NOW, limit=2)
        assert claimed.processed == (rows[0].id, rows[1].id)
        second = run_ingest(session_factory, storage, spool)
        assert second.processed == (rows[2].id, rows[3].id)
        first.commit()

    assert run_ingest(session_factory, storage, spool) == IngestReport()
    assert set(storage.puts.values()) == {1} and len(storage.puts) == 4
    assert list(spool.iterdir()) == []


def test_concurrent_runs_never_process_one_row_twice(
    session_factory: sessionmaker[Session], calls: Calls, spool: Path, storage: CountingStorage
) -> None:
    rows = [calls.pending() for _ in range(16)]
    for index, pending in enumerate(rows):
        write_tone_recording(spool / pending.storage_key, 0.6, seed=index)
    start = threading.Barrier(2)
    reports: dict[str, list[IngestReport]] = {"a": [], "b": []}
    problems: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            start.wait(timeout=10)
            while True:
                report = run_ingest(session_factory, storage, spool, limit=3)
                reports[name].append(report)
                if report.handled == 0:
                    return
        except BaseException as exc:  # surfaced in the main thread below
            problems.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not problems
    done = {name: [i for r in runs for i in r.processed] for name, runs in reports.items()}
    assert sorted(done["a"] + done["b"]) == [r.id for r in rows]  # every row exactly once
    assert not set(done["a"]) & set(done["b"])
    assert set(storage.puts.values()) == {1} and len(storage.puts) == len(rows)
    with session_factory() as session:
        statuses = session.scalars(select(Recording.status)).all()
    assert set(statuses) == {"processed"}
    assert list(spool.iterdir()) == []


# --- Celery ---------------------------------------------------------------------------------------------


def test_celery_tasks_run_eagerly_and_beat_schedule_names_them(
    settings: Settings, session_factory: sessionmaker[Session], calls: Calls, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={"recordings_dir": tmp_path / "recordings", "redis_url": None, "celery_broker_url": None}
    )
    celery = make_celery(settings)
    assert celery.conf.task_always_eager
    storage = LocalStorage(settings.recordings_dir)
    clock = FixedClock(NOW)
    tasks = register(
        celery,
        session_factory=session_factory,
        storage=storage,
        settings=settings,
        clock=clock,
        policy=IngestPolicy(retention_days=1),
    )
    pending = calls.pending()
    write_tone_recording(spool_dir_of(settings) / pending.storage_key, 1.0, seed=6)

    tasks.enqueue_ingest()

    row = load(session_factory, pending.id)
    assert row.status == "processed" and storage.exists(row.storage_key)
    assert celery.tasks[INGEST_TASK].delay().get() == dict.fromkeys(
        ("processed", "empty", "corrupt", "missing", "rejected", "failed", "errors", "waiting"), 0
    )

    clock.advance(2 * 86400)
    tasks.enqueue_purge()

    assert load(session_factory, pending.id).status == "purged"
    assert not storage.exists(row.storage_key)
    schedule = beat_schedule()
    assert schedule[INGEST_TASK]["task"] == INGEST_TASK and schedule[INGEST_TASK]["schedule"] == 30.0
    assert schedule[PURGE_TASK]["task"] == PURGE_TASK
