"""Ingest MixMonitor files: pending `recording` rows become processed (or empty/corrupt/missing) rows.

The dialer ledger writes a `recording` row in status ``pending`` whose `storage_key` is the file name
MixMonitor used; the file itself lands in the spool directory some time around the hangup. This module
picks those rows up, processes the file with `recordings.processing`, stores the result under our own
key and records the outcome on the row.

Safety decisions:

* The file name comes from a channel variable, so it is untrusted: only a plain file name is accepted
  (no separators, no leading dot, no NUL), and the spool entry must be a regular file, not a symlink.
  Anything else marks the row ``rejected`` without touching the file system.
* Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``: concurrent runs split the work and never
  process one row twice.
* Each row runs in its own savepoint; an unexpected error is logged with the recording id, noted on the
  row, and retried by the next run (``failed`` after `IngestPolicy.max_attempts`).
* The spool file is deleted only once the transaction that points the row at the stored copy has
  committed. A rollback leaves the file in place and the row pending, so the next run redoes the work
  (storage keys are deterministic, so a redo overwrites rather than duplicates).
"""

from __future__ import annotations

import logging
import re
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session, SessionTransaction

from recordings.models import Recording
from recordings.processing import ProcessedRecording, RecordingProblem, process_recording
from recordings.storage import InvalidStorageKey, RecordingStorage, validate_key

log = logging.getLogger("recordings.ingest")

STATUS_PENDING = "pending"
STATUS_PROCESSED = "processed"
STATUS_EMPTY = "empty"
STATUS_CORRUPT = "corrupt"
STATUS_MISSING = "missing"
STATUS_REJECTED = "rejected"
STATUS_FAILED = "failed"

DEFAULT_RETENTION_DAYS = 365
DEFAULT_MISSING_GRACE = timedelta(minutes=15)
DEFAULT_MAX_ATTEMPTS = 5

# A plain file name: letters, digits, dot, dash, underscore, plus; no leading dot (rules out "..",
# ".hidden"), no slash or backslash, no NUL, no colon. MixMonitor names look like
# ``out-13800138001-att-0123abcd-b.wav`` or ``out-1000-testpbx-1795350069.1.wav``.
_SPOOL_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9._+-]{0,127}")
_CLEANUP = "recordings.ingest.spool_cleanup"
_LISTENING = "recordings.ingest.listening"


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    """Tunables of ingest (one value per process, built at wiring time)."""

    retention_days: int = DEFAULT_RETENTION_DAYS
    keep_original: bool = False  # also store the source WAV next to the compressed copy
    missing_grace: timedelta = DEFAULT_MISSING_GRACE  # how long a row may wait for its file
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  # unexpected errors before a row is marked failed
    # Real Asterisk puts the full spool path into MIXMONITOR_FILENAME
    # (``/var/spool/asterisk/monitor/out-….wav``). When set, a key that is exactly
    # ``<pbx_spool_dir>/<plain name>`` is read by its name; any other path is still rejected.
    pbx_spool_dir: str | None = None
    ffmpeg: str | None = "auto"  # passed to process_recording: "auto", None (no transcoding) or a path


@dataclass(frozen=True, slots=True)
class IngestReport:
    """Recording ids per outcome of one ingest run."""

    processed: tuple[int, ...] = ()
    empty: tuple[int, ...] = ()
    corrupt: tuple[int, ...] = ()
    missing: tuple[int, ...] = ()
    rejected: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()  # gave up after max_attempts
    errors: tuple[int, ...] = ()  # unexpected error this run; still pending, retried next run
    waiting: tuple[int, ...] = ()  # file not there yet, still within the grace period

    @property
    def handled(self) -> int:
        """Rows that left status pending in this run."""
        return sum(
            len(ids)
            for ids in (
                self.processed,
                self.empty,
                self.corrupt,
                self.missing,
                self.rejected,
                self.failed,
            )
        )

    def counts(self) -> dict[str, int]:
        """Outcome -> number of rows, for logs and task results."""
        return {name: len(getattr(self, name)) for name in _OUTCOMES}


_OUTCOMES = ("processed", "empty", "corrupt", "missing", "rejected", "failed", "errors", "waiting")


@dataclass(slots=True)
class _Tally:
    ids: dict[str, list[int]] = field(default_factory=lambda: {name: [] for name in _OUTCOMES})

    def add(self, outcome: str, recording_id: int) -> None:
        self.ids[outcome].append(recording_id)

    def report(self) -> IngestReport:
        return IngestReport(**{name: tuple(ids) for name, ids in self.ids.items()})


class _Rejected(Exception):
    """The row's file name is not acceptable; the message says why."""


def ingest_pending(
    session: Session,
    *,
    storage: RecordingStorage,
    spool_dir: Path,
    now: datetime,
    limit: int = 50,
    policy: IngestPolicy = IngestPolicy(),
) -> IngestReport:
    """Process up to `limit` pending recordings whose files are in `spool_dir`; never raises per row."""
    spool_root = Path(spool_dir).resolve()
    rows = session.scalars(
        select(Recording)
        .where(Recording.status == STATUS_PENDING)
        .order_by(Recording.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    tally = _Tally()
    for recording in rows:
        recording_id = recording.id
        stored: list[str] = []
        try:
            with session.begin_nested():
                outcome, spool_file = _ingest_one(
                    session,
                    recording,
                    storage=storage,
                    spool_root=spool_root,
                    now=now,
                    policy=policy,
                    stored=stored,
                )
        except Exception as exc:
            log.exception("recording ingest failed recording_id=%s", recording_id)
            _forget_stored(storage, stored, recording_id)
            tally.add(_note_failure(session, recording_id, exc, now=now, policy=policy), recording_id)
            continue
        if spool_file is not None:
            _delete_after_commit(session, spool_file)
        tally.add(outcome, recording_id)
        if outcome != "waiting":
            log.info("recording ingested recording_id=%s status=%s", recording_id, outcome)
    report = tally.report()
    if rows:
        log.info("recording ingest run %s", report.counts())
    return report


def spool_file_name(storage_key: str, *, pbx_spool_dir: str | None = None) -> str:
    """The plain spool file name a pending row refers to; raise ValueError for anything else."""
    name = storage_key
    if pbx_spool_dir is not None and "/" in storage_key:
        path = PurePosixPath(storage_key)
        if str(path) != storage_key or str(path.parent) != str(PurePosixPath(pbx_spool_dir)):
            raise ValueError(f"recording path {storage_key!r} is outside the PBX spool directory")
        name = path.name
    if _SPOOL_NAME.fullmatch(name) is None:
        raise ValueError(f"recording file name {storage_key!r} is not a plain file name")
    return name


def storage_keys_for(recording: Recording, extension: str) -> tuple[str, str]:
    """Our (playback key, original key) for a recording: ``YYYY/MM/DD/<call_id>-<attempt_id>.<ext>``."""
    day = _aware(recording.created_at).astimezone(UTC).strftime("%Y/%m/%d")
    base = f"{recording.call_id}-{recording.attempt_id}"
    if recording.call_id is None or recording.attempt_id is None or not _is_valid_key(f"{day}/{base}.wav"):
        base = f"recording-{recording.id}"
    return f"{day}/{base}.{extension}", f"{day}/{base}.orig.wav"


# --- one row ----------------------------------------------------------------------------------------


def _ingest_one(
    session: Session,
    recording: Recording,
    *,
    storage: RecordingStorage,
    spool_root: Path,
    now: datetime,
    policy: IngestPolicy,
    stored: list[str],
) -> tuple[str, Path | None]:
    """Handle one locked pending row; return (outcome, spool file to delete after commit)."""
    try:
        src = _spool_path(recording.storage_key, spool_root, pbx_spool_dir=policy.pbx_spool_dir)
    except _Rejected as why:
        log.warning("recording rejected recording_id=%s reason=%s", recording.id, why)
        _finish(recording, STATUS_REJECTED, problem=RecordingProblem("rejected", str(why)))
        return STATUS_REJECTED, None
    if src is None:
        if now - _aware(recording.created_at) < policy.missing_grace:
            return "waiting", None
        message = f"{recording.storage_key} did not arrive in the spool within {policy.missing_grace}"
        log.warning("recording missing recording_id=%s file=%s", recording.id, recording.storage_key)
        _finish(recording, STATUS_MISSING, problem=RecordingProblem("missing", message))
        return STATUS_MISSING, None

    with tempfile.TemporaryDirectory(prefix="cc-ingest-") as tmp:
        result = process_recording(src, Path(tmp), keep_original=policy.keep_original, ffmpeg=policy.ffmpeg)
        if result.status == STATUS_PROCESSED:
            _store_processed(
                session, recording, result, storage=storage, now=now, policy=policy, stored=stored
            )
        elif result.status == STATUS_CORRUPT:
            # Nothing playable, but the bytes are the only evidence of what went wrong (a PBX writing
            # mu-law or 44.1 kHz is "unsupported", not lost): keep them under the original key.
            _, original_key = _free_keys(session, recording, "wav")
            storage.put(original_key, src)
            stored.append(original_key)
            _finish(recording, STATUS_CORRUPT, problem=result.problem, source=src.name)
            recording.original_key = original_key
            recording.purge_after = now + timedelta(days=policy.retention_days)
        else:
            _finish(recording, result.status, problem=result.problem, source=src.name)
    return result.status, src


def _store_processed(
    session: Session,
    recording: Recording,
    result: ProcessedRecording,
    *,
    storage: RecordingStorage,
    now: datetime,
    policy: IngestPolicy,
    stored: list[str],
) -> None:
    assert result.output_path is not None and result.metrics is not None
    extension = result.output_path.suffix.lstrip(".") or "wav"
    key, original_key = _free_keys(session, recording, extension)
    storage.put(key, result.output_path)
    stored.append(key)
    if result.original_path is not None:
        storage.put(original_key, result.original_path)
        stored.append(original_key)
    else:
        original_key = ""
    metrics: dict[str, Any] = asdict(result.metrics)
    metrics.update(
        talk_ratio=list(result.metrics.talk_ratio),
        peaks=list(result.metrics.peaks),
        sample_rate=result.sample_rate,
        channels=result.channels,
        format=result.transcoded_format or "wav",
        source_file=result.source.name,
        ingested_at=now.isoformat(),
    )
    if result.problem is not None:
        metrics["problem"] = _problem_dict(result.problem)
    if result.note:
        metrics["note"] = result.note
    recording.status = STATUS_PROCESSED
    recording.storage_key = key
    recording.original_key = original_key
    recording.content_type = result.content_type
    recording.duration_s = result.metrics.duration_s
    recording.metrics = metrics
    recording.purge_after = now + timedelta(days=policy.retention_days)


def _free_keys(session: Session, recording: Recording, extension: str) -> tuple[str, str]:
    """`storage_keys_for`, made unique when another row of the same call and attempt already uses them."""
    key, original_key = storage_keys_for(recording, extension)
    taken = session.scalar(
        select(Recording.id).where(
            or_(
                Recording.storage_key.in_((key, original_key)),
                Recording.original_key.in_((key, original_key)),
            ),
            Recording.id != recording.id,
        )
    )
    if taken is not None:
        # Two rows for one call and attempt: keep both, the later one under its own id.
        key, original_key = _suffixed(key, recording.id), _suffixed(original_key, recording.id)
    return key, original_key


def _suffixed(key: str, recording_id: int) -> str:
    head, _, tail = key.rpartition("/")
    stem, dot, ext = tail.partition(".")
    return f"{head}/{stem}-r{recording_id}{dot}{ext}"


def _finish(recording: Recording, status: str, *, problem: RecordingProblem | None, source: str = "") -> None:
    metrics: dict[str, Any] = {**(recording.metrics or {})}
    metrics.pop("ingest_error", None)
    if problem is not None:
        metrics["problem"] = _problem_dict(problem)
    if source:
        metrics["source_file"] = source
    recording.status = status
    recording.duration_s = 0.0
    recording.metrics = metrics


def _problem_dict(problem: RecordingProblem) -> dict[str, str]:
    return {"code": problem.code, "message": problem.message[:500]}


def _spool_path(storage_key: str, spool_root: Path, *, pbx_spool_dir: str | None) -> Path | None:
    """The spool file of a row, None if it is not there (yet); raise _Rejected for a hostile name."""
    try:
        name = spool_file_name(storage_key, pbx_spool_dir=pbx_spool_dir)
    except ValueError as exc:
        raise _Rejected(str(exc)) from exc
    path = spool_root / name
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    # A symlink planted in the spool could point anywhere (lstat does not follow it).
    if not stat.S_ISREG(mode):
        raise _Rejected(f"spool entry {name!r} is not a regular file")
    return path


# --- failure bookkeeping ----------------------------------------------------------------------------


def _note_failure(
    session: Session, recording_id: int, exc: Exception, *, now: datetime, policy: IngestPolicy
) -> str:
    """Record an unexpected error on the row (outside the rolled-back savepoint); 'failed' or 'errors'."""
    try:
        with session.begin_nested():
            recording = session.get(Recording, recording_id, populate_existing=True)
            if recording is None:
                return "errors"
            metrics: dict[str, Any] = {**(recording.metrics or {})}
            attempts = int(metrics.get("ingest_attempts", 0)) + 1
            metrics["ingest_attempts"] = attempts
            metrics["ingest_error"] = f"{type(exc).__name__}: {exc}"[:500]
            metrics["ingest_error_at"] = now.isoformat()
            recording.metrics = metrics
            if attempts >= policy.max_attempts:
                recording.status = STATUS_FAILED
                return STATUS_FAILED
    except Exception:
        log.exception("could not record the ingest failure recording_id=%s", recording_id)
    return "errors"


def _forget_stored(storage: RecordingStorage, keys: list[str], recording_id: int) -> None:
    """Best effort: remove objects stored for a row whose update was rolled back."""
    for key in keys:
        try:
            storage.delete(key)
        except Exception:
            log.exception("could not remove %s after a failed ingest recording_id=%s", key, recording_id)


# --- spool cleanup after commit ---------------------------------------------------------------------


def _delete_after_commit(session: Session, path: Path) -> None:
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True
        event.listen(session, "after_commit", _on_commit)
        event.listen(session, "after_transaction_end", _on_transaction_end)
    session.info.setdefault(_CLEANUP, []).append(path)


def _on_commit(session: Session) -> None:
    # after_commit also fires when a savepoint is released; only the outermost commit makes rows durable.
    if session.in_nested_transaction():
        return
    for path in session.info.pop(_CLEANUP, None) or []:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            log.exception("could not delete spool file %s", path)


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and not transaction.nested:
        # Rolled back (a commit has already emptied the list): keep the files for the next run.
        session.info.pop(_CLEANUP, None)


def _is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidStorageKey:
        return False
    return True


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
