"""Celery tasks of the recordings domain, registered on an app by the process wiring (no side effects)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core.clock import Clock, SystemClock
from core.db import unit_of_work
from recordings.ingest import IngestPolicy, ingest_pending
from recordings.retention import purge_expired
from recordings.storage import RecordingStorage

log = logging.getLogger("recordings.tasks")
INGEST_TASK = "recordings.ingest"
PURGE_TASK = "recordings.purge"
INGEST_EVERY_S = 30.0


def spool_dir_of(settings: Settings) -> Path:
    """Where the PBX's MixMonitor files arrive (the sandbox PBX writes there too, see dialer.main)."""
    return settings.recordings_dir / "incoming"


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Celery beat entries: ingest every 30 s, purge once a day (03:30 UTC, off-peak)."""
    return {
        INGEST_TASK: {
            "task": INGEST_TASK,
            "schedule": INGEST_EVERY_S,
            "options": {"expires": INGEST_EVERY_S},
        },
        PURGE_TASK: {"task": PURGE_TASK, "schedule": crontab(hour=3, minute=30)},
    }


@dataclass(frozen=True, slots=True)
class RecordingTasks:
    enqueue_ingest: Callable[[], None]
    enqueue_purge: Callable[[], None]


def register(
    celery: Celery,
    *,
    session_factory: sessionmaker[Session],
    storage: RecordingStorage,
    settings: Settings,
    clock: Clock | None = None,
    policy: IngestPolicy | None = None,
    ingest_limit: int = 50,
    purge_limit: int = 500,
) -> RecordingTasks:
    """Define the recordings tasks on `celery` and return typed enqueue functions."""
    time_source: Clock = clock or SystemClock()
    ingest_policy = policy or IngestPolicy()
    spool_dir = spool_dir_of(settings)

    # No retries: each run is idempotent and beat starts the next one in 30 s (or tomorrow).
    @celery.task(name=INGEST_TASK, acks_late=True, ignore_result=False, shared=False)
    def ingest() -> dict[str, int]:
        with unit_of_work(session_factory) as session:
            report = ingest_pending(
                session,
                storage=storage,
                spool_dir=spool_dir,
                now=time_source.now(),
                limit=ingest_limit,
                policy=ingest_policy,
            )
        return report.counts()

    @celery.task(name=PURGE_TASK, acks_late=True, ignore_result=False, shared=False)
    def purge() -> dict[str, int]:
        with unit_of_work(session_factory) as session:
            report = purge_expired(session, storage=storage, now=time_source.now(), limit=purge_limit)
        return {"purged": len(report.purged), "failed": len(report.failed), "held": report.held}

    def enqueue_ingest() -> None:
        ingest.delay()

    def enqueue_purge() -> None:
        purge.delay()

    return RecordingTasks(enqueue_ingest=enqueue_ingest, enqueue_purge=enqueue_purge)
