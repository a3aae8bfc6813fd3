"""Alembic environment: one metadata for all domains; batch mode so ALTERs work on SQLite."""

from __future__ import annotations

from alembic import context

from core.db import Base, import_all_models, make_engine

import_all_models()
config = context.config
_configured_url = config.get_main_option("sqlalchemy.url")
if not _configured_url:
    raise RuntimeError("sqlalchemy.url must be set by core.migrate")
url: str = _configured_url


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)  # type: ignore[arg-type]
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
