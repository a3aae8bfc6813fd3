"""`callcenter` command: one subcommand per process, plus migrations, users and the demo."""

from __future__ import annotations

import getpass
import logging
import socket
from typing import Any

import typer

from config.settings import Settings, get_settings
from core.audit import Actor
from core.models import Role
from core.process import freeze_startup_heap

app = typer.Typer(help="Call-center and dialer: run a process, migrate, manage users.", no_args_is_help=True)
CLI_ACTOR = Actor(user_id=None, label="cli")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


@app.command()
def migrate(revision: str = typer.Option("head", help="target revision")) -> None:
    """Apply database migrations."""
    from core import migrate as migrations

    settings = get_settings()
    migrations.upgrade(settings.database_url, revision)
    typer.echo(f"database at {revision}")


@app.command("create-user")
def create_user(
    username: str,
    role: Role = typer.Option(Role.AGENT),
    password: str | None = None,
    display_name: str = "",
    extension: str | None = None,
) -> None:
    """Create a user (asks for the password when not given)."""
    from core.db import make_engine, make_session_factory, unit_of_work
    from core.users import create_user as create

    settings = get_settings()
    secret = password or getpass.getpass("password: ")
    with unit_of_work(make_session_factory(make_engine(settings.database_url))) as session:
        user = create(
            session,
            CLI_ACTOR,
            username=username,
            password=secret,
            role=role,
            display_name=display_name,
            extension=extension,
        )
        typer.echo(f"created user {user.username} ({user.role.value}) id={user.id}")


@app.command()
def api(
    host: str | None = None,
    port: int | None = None,
    log_level: str = "info",
    workers: int | None = typer.Option(None, min=1, help="processes (default CC_API_WORKERS, 1)"),
) -> None:
    """Run the web API and pages."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from api.app import app_from_environment

    _setup_logging(log_level)
    settings = get_settings()
    bind_host, bind_port = host or settings.api_host, port or settings.api_port
    processes = workers or settings.api_workers
    if processes == 1:
        uvicorn.run(app_from_environment(), host=bind_host, port=bind_port, log_level=log_level)
    else:
        # Several processes share the socket; each builds its own app (and database pool) from the
        # environment. Nothing the API keeps in memory needs sharing: login throttling, agent state and
        # live feeds all live in the database.
        config = uvicorn.Config(
            "api.app:app_from_environment",
            factory=True,
            workers=processes,
            host=bind_host,
            port=bind_port,
            log_level=log_level,
        )
        listener = config.bind_socket()
        # uvicorn binds this socket with proto 0, so asyncio never sets TCP_NODELAY on the connections it
        # accepts and every keep-alive response after the first waits ~40 ms for the client's delayed ACK
        # (uvicorn#3149; measured here: 56 ms instead of 11 ms a request). Linux copies TCP_NODELAY from
        # the listening socket to accepted ones.
        if listener.family in (socket.AF_INET, socket.AF_INET6):
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Multiprocess(config, sockets=[listener]).run()


@app.command()
def worker(concurrency: int = 2, log_level: str = "info") -> None:
    """Run a Celery worker (needs CC_REDIS_URL)."""
    settings = get_settings()
    _require_broker(settings)
    _celery(settings).worker_main(["worker", f"--concurrency={concurrency}", f"--loglevel={log_level}"])


@app.command()
def beat(log_level: str = "info") -> None:
    """Run the Celery beat scheduler (needs CC_REDIS_URL)."""
    settings = get_settings()
    _require_broker(settings)
    _celery(settings).start(["beat", f"--loglevel={log_level}"])


def _celery(settings: Settings) -> Any:
    from core.clock import SystemClock
    from core.db import make_engine, make_session_factory
    from core.worker import build_tasks

    factory = make_session_factory(make_engine(settings.database_url))
    return build_tasks(settings, session_factory=factory, clock=SystemClock())[0]


@app.command()
def dialer(log_level: str = "info") -> None:
    """Run the dialer engine (one AMI connection, pacing, ledger) against the configured PBX."""
    import asyncio

    from core.db import make_engine, make_session_factory
    from dialer.main import serve_dialer

    _setup_logging(log_level)
    settings = get_settings()
    factory = make_session_factory(make_engine(settings.database_url))
    freeze_startup_heap()
    asyncio.run(serve_dialer(settings, session_factory=factory))


@app.command()
def agi(log_level: str = "info") -> None:
    """Run the FastAGI screening server (inbound calls) on CC_AGI_HOST:CC_AGI_PORT."""
    import asyncio

    from core.db import make_engine, make_session_factory
    from ivr.main import serve_agi

    _setup_logging(log_level)
    settings = get_settings()
    factory = make_session_factory(make_engine(settings.database_url))
    freeze_startup_heap()
    asyncio.run(serve_agi(settings, session_factory=factory))


@app.command()
def prompts(sounds_dir: str = typer.Argument("var/sounds", help="Asterisk sounds directory")) -> None:
    """Generate the IVR challenge prompts (espeak-ng + sox, 8 kHz WAV, zh-CN and en)."""
    from pathlib import Path

    from ivr.challenge import generate_prompts

    written = generate_prompts(Path(sounds_dir))
    typer.echo(f"{len(written)} prompts written under {sounds_dir}")


@app.command()
def sandbox(
    answer_rate: float = typer.Option(0.3, help="share of dials a person answers"),
    talk_mean_s: float = typer.Option(60.0, help="mean talk time of answered calls"),
    seed: int = 7,
    log_level: str = "info",
) -> None:
    """Run the sandbox PBX (AMI on CC_AMI_HOST:CC_AMI_PORT) for development and tests."""
    import asyncio

    from dialer.main import serve_sandbox
    from dialer.sandbox.callmodel import CallModel

    _setup_logging(log_level)
    model = CallModel(answer_rate=answer_rate, talk_mean_s=talk_mean_s, seed=seed)
    asyncio.run(serve_sandbox(get_settings(), model=model))


@app.command()
def demo(port: int = 8000, log_level: str = "info") -> None:
    """Run the whole product on embedded defaults: web app, sandbox PBX, dialer, screening IVR."""
    import asyncio

    from core.demo import run

    _setup_logging(log_level)
    settings = get_settings()
    if settings.environment == "production":
        typer.echo("refusing to seed demo users in production", err=True)
        raise typer.Exit(2)
    asyncio.run(run(settings, port=port, log_level=log_level))


def _require_broker(settings: Settings) -> None:
    if settings.redis_url is None and settings.celery_broker_url is None:
        typer.echo("set CC_REDIS_URL: the embedded default runs tasks in-process, not in a worker", err=True)
        raise typer.Exit(2)


if __name__ == "__main__":
    app()
