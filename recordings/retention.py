"""Retention: delete the audio of recordings past their `purge_after`, keep the row, audit each purge.

The row stays (status ``purged``) so QA reviews, scores and metrics keep their context; only the stored
objects go. A legal hold blocks the purge for as long as it is set; the row is picked up by the first
run after the hold is lifted. Rows still ``pending`` are never purged (ingest owns them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import audit
from recordings.models import Recording
from recordings.storage import InvalidStorageKey, RecordingStorage

log = logging.getLogger("recordings.retention")

STATUS_PURGED = "purged"
PURGE_ACTION = "recording.purge"
RETENTION_ACTOR = audit.Actor(user_id=None, label="system:retention")
_NOT_PURGEABLE = ("pending", STATUS_PURGED)


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """What one retention run did."""

    purged: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()  # storage refused a delete; retried next run
    held: int = 0  # expired recordings kept because of a legal hold


def purge_expired(
    session: Session,
    *,
    storage: RecordingStorage,
    now: datetime,
    limit: int = 500,
    actor: audit.Actor = RETENTION_ACTOR,
) -> PurgeReport:
    """Delete the audio of up to `limit` expired recordings not under legal hold; mark them purged."""
    expired = (
        Recording.purge_after.is_not(None),
        Recording.purge_after <= now,
        Recording.status.not_in(_NOT_PURGEABLE),
    )
    rows = session.scalars(
        select(Recording)
        .where(*expired, Recording.legal_hold.is_(False))
        .order_by(Recording.purge_after, Recording.id)
        .limit(limit)
        # Concurrent runs (or an ingest run holding a row) never fight over one row.
        .with_for_update(skip_locked=True)
    ).all()
    purged: list[int] = []
    failed: list[int] = []
    for recording in rows:
        recording_id = recording.id
        try:
            with session.begin_nested():
                _purge_one(session, recording, storage=storage, now=now, actor=actor)
        except Exception:
            log.exception("recording purge failed recording_id=%s", recording_id)
            failed.append(recording_id)
            continue
        purged.append(recording_id)
    held = session.scalar(
        select(func.count()).select_from(Recording).where(*expired, Recording.legal_hold.is_(True))
    )
    report = PurgeReport(purged=tuple(purged), failed=tuple(failed), held=held or 0)
    if rows or report.held:
        log.info(
            "recording purge run purged=%s failed=%s held=%s",
            len(report.purged),
            len(report.failed),
            report.held,
        )
    return report


def _purge_one(
    session: Session, recording: Recording, *, storage: RecordingStorage, now: datetime, actor: audit.Actor
) -> None:
    deleted: list[str] = []
    absent: list[str] = []
    refused: list[str] = []
    for key in dict.fromkeys(k for k in (recording.storage_key, recording.original_key) if k):
        try:
            (deleted if storage.delete(key) else absent).append(key)
        except InvalidStorageKey:
            # Never one of ours (e.g. a hostile name ingest rejected): there is nothing stored under it.
            refused.append(key)
    previous_status = recording.status
    recording.status = STATUS_PURGED
    audit.record(
        session,
        actor,
        action=PURGE_ACTION,
        entity_type="recording",
        entity_id=recording.id,
        details={
            "call_id": recording.call_id,
            "previous_status": previous_status,
            "purge_after": recording.purge_after.isoformat() if recording.purge_after else None,
            "purged_at": now.isoformat(),
            "deleted": deleted,
            "already_absent": absent,
            "invalid_keys": refused,
        },
        summary=f"recording {recording.id} audio purged by retention",
    )
    log.info("recording purged recording_id=%s deleted=%s", recording.id, deleted)
