"""The FastAPI app factory: routers under /api/v1, JSON errors, request ids, security headers."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from agents import routes as agent_routes
from api import errors
from api.limits import BodyLimit, InFlightLimit, max_in_flight_requests
from api.pages import agent as agent_pages
from api.pages import qa as qa_pages
from api.pages import routes as page_routes
from api.request_context import RequestContext
from api.routes import audit as audit_routes
from api.routes import auth as auth_routes
from api.routes import users as user_routes
from config.settings import Settings, get_settings
from core.clock import Clock, SystemClock
from core.db import make_engine, make_session_factory
from core.process import freeze_startup_heap
from core.security import TokenVerifier
from core.worker import Tasks, build_tasks
from dialer import routes as dialer_routes
from ivr import routes as ivr_routes
from recordings import routes as recording_routes
from recordings.qa import routes as qa_routes
from recordings.storage import LocalStorage, RecordingStorage

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 20 * 1024 * 1024  # lead imports are the largest uploads

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
}


def create_app(
    settings: Settings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
    tasks: Tasks | None = None,
    recording_storage: RecordingStorage | None = None,
) -> FastAPI:
    """Build the API process's app; every dependency is passed in or derived from settings."""
    app = FastAPI(
        title="Call-center API",
        version="0.1.0",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        responses=errors.ERROR_RESPONSES,
    )
    if session_factory is None:
        session_factory = make_session_factory(make_engine(settings.database_url))
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.clock = clock or SystemClock()
    app.state.token_verifier = TokenVerifier(settings.secret_key.get_secret_value())
    app.state.recording_storage = recording_storage or LocalStorage(settings.recordings_dir)
    app.state.tasks = (
        tasks or build_tasks(settings, session_factory=session_factory, clock=app.state.clock)[1]
    )
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(InFlightLimit, max_in_flight=max_in_flight_requests(session_factory))

    # Added last, so outermost: the 413 and 503 answers of the layers above get ids and headers too.
    app.add_middleware(RequestContext, max_bytes=MAX_BODY_BYTES, headers=SECURITY_HEADERS)

    api = APIRouter(prefix=API_PREFIX)

    @api.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness and database reachability (public, for load balancers and compose)."""
        with app.state.session_factory() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    for router in (
        auth_routes.router,
        user_routes.router,
        audit_routes.router,
        dialer_routes.router,
        ivr_routes.router,
        recording_routes.router,
        qa_routes.router,
        agent_routes.router,
    ):
        api.include_router(router)
    app.include_router(api)
    app.include_router(page_routes.router)
    app.include_router(qa_pages.router)
    app.include_router(agent_pages.router)
    app.mount("/static", StaticFiles(directory=str(page_routes.STATIC_DIR)), name="static")
    return app


PUBLIC_PATHS = frozenset({f"{API_PREFIX}/health", f"{API_PREFIX}/auth/login", "/login", "/logout"})


def app_from_environment() -> FastAPI:
    """The app of a `callcenter api` process (each worker of `--workers N` calls this itself)."""
    app = create_app(get_settings())
    freeze_startup_heap()
    return app
