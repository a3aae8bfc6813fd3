"""The Celery app: Redis broker in production, eager in-process execution for the embedded default."""

from __future__ import annotations

from celery import Celery

from config.settings import Settings

TASK_MODULES = ["dialer.tasks"]


def make_celery(settings: Settings) -> Celery:
    """Build the Celery app for this process from settings (no module-level singleton)."""
    broker = settings.celery_broker_url or settings.redis_url
    app = Celery("callcenter", include=[])
    if broker is None:
        # Embedded default: tasks run inline in the calling process; no broker, no worker.
        app.conf.update(
            broker_url="memory://",
            result_backend="cache+memory://",
            task_always_eager=True,
            task_eager_propagates=True,
        )
    else:
        app.conf.update(broker_url=broker, result_backend=settings.redis_url or broker)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        broker_connection_retry_on_startup=True,
    )
    return app
