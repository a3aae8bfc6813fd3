"""Wiring of the background tasks: one Celery app with every domain's tasks (worker, beat and the API)."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core.clock import Clock
from core.tasks import make_celery
from dialer import tasks as dialer_tasks
from dialer.tasks import DialerTasks
from recordings import tasks as recording_tasks
from recordings.storage import LocalStorage, RecordingStorage
from recordings.tasks import RecordingTasks


@dataclass(frozen=True, slots=True)
class Tasks:
    """The background-task entry points callers enqueue to (Celery, or inline when eager)."""

    dialer: DialerTasks
    recordings: RecordingTasks


def build_tasks(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session],
    clock: Clock,
    storage: RecordingStorage | None = None,
) -> tuple[Celery, Tasks]:
    """The Celery app with every task registered, and typed enqueue functions."""
    celery = make_celery(settings)
    tasks = Tasks(
        dialer=dialer_tasks.register(
            celery, session_factory=session_factory, clock=clock, region=settings.default_region
        ),
        recordings=recording_tasks.register(
            celery,
            session_factory=session_factory,
            storage=storage or LocalStorage(settings.recordings_dir),
            settings=settings,
            clock=clock,
        ),
    )
    celery.conf.beat_schedule = recording_tasks.beat_schedule()
    return celery, tasks
