"""Celery tasks of the dialer domain, registered on an app by the process wiring (no import side effects)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock
from core.db import unit_of_work
from dialer import service

log = logging.getLogger("dialer.tasks")
IMPORT_TASK = "dialer.import_leads"


def run_import(
    session_factory: sessionmaker[Session], clock: Clock, job_id: int, *, region: str, batch_size: int = 1000
) -> None:
    """Run an import job to the end, one committed batch at a time (resumable)."""
    while True:
        with unit_of_work(session_factory) as session:
            result = service.run_import_batch(
                session, job_id, region=region, now=clock.now(), batch_size=batch_size
            )
        log.info("import job=%s processed=%s done=%s", job_id, result.processed_rows, result.done)
        if result.done:
            return


@dataclass(frozen=True, slots=True)
class DialerTasks:
    enqueue_import: Callable[[int], None]


def register(
    celery: Celery, *, session_factory: sessionmaker[Session], clock: Clock, region: str
) -> DialerTasks:
    """Define the dialer tasks on `celery` and return typed enqueue functions."""

    # shared=False: a shared task is copied into every Celery app created later in the process,
    # with this closure's session factory (and a DuplicateTaskNameWarning when that app registers its own).
    @celery.task(name=IMPORT_TASK, acks_late=True, max_retries=3, shared=False)
    def import_leads(job_id: int) -> None:
        run_import(session_factory, clock, job_id, region=region)

    def enqueue_import(job_id: int) -> None:
        import_leads.delay(job_id)

    return DialerTasks(enqueue_import=enqueue_import)
