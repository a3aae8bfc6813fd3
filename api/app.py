"""The FastAPI app factory: routers under /api/v1, JSON errors, request ids, security headers."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from agents import routes as agent_routes
from api import errors
from api.limits import BodyLimit, InFlightLimit, max_in_flight_requests
from api.pages import agent as agent_pages
from api.pages import qa as qa_pages
from api.pages import routes as page_routes
from api.routes import audit as audit_routes
from api.routes import auth as auth_routes
from api.routes import users as user_routes
from config.settings import Settings
from core.clock import Clock, SystemClock
from core.db import make_engine, make_session_factory
from core.worker import Tasks, build_tasks
from dialer import routes as dialer_routes
from ivr import routes as ivr_routes
from recordings import routes as recording_routes
from recordings.qa import routes as qa_routes
from recordings.storage import LocalStorage, RecordingStorage

log = logging.getLogger("api.access")
API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 20 * 1024 * 1024  # lead imports are the largest uploads
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

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
    app.state.recording_storage = recording_storage or LocalStorage(settings.recordings_dir)
    app.state.tasks = (
        tasks or build_tasks(settings, session_factory=session_factory, clock=app.state.clock)[1]
    )
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(InFlightLimit, max_in_flight=max_in_flight_requests(session_factory))

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        request.state.request_id = request_id
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            response: Response = JSONResponse(
                {
                    "error_id": "payload_too_large",
                    "message": f"body exceeds {MAX_BODY_BYTES} bytes",
                    "details": None,
                },
                status_code=413,
            )
        else:
            started = time.perf_counter()
            response = await call_next(request)
            log.info(
                "request_id=%s %s %s -> %s %.1fms",
                request_id,
                request.method,
                request.url.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        response.headers["X-Request-ID"] = request_id
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

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
