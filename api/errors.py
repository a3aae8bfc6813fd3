"""The one place that maps domain errors to HTTP: every error body is {error_id, message, details}."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, OperationalError, StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    ValidationFailed,
)

log = logging.getLogger("api.errors")

STATUS_BY_ERROR: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    ValidationFailed: 422,
    PermissionDenied: 403,
    AuthenticationFailed: 401,
    TooManyAttempts: 429,
}


class ErrorBody(BaseModel):
    error_id: str
    message: str
    details: Any = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


def login_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(path, safe='/')}", status_code=303)


def _body(error_id: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error_id": error_id, "message": message, "details": details}


def _status_for(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def install(app: FastAPI) -> None:
    """Register the exception handlers on the app."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse | RedirectResponse:
        status = 416 if exc.error_id == "range_not_satisfiable" else _status_for(exc)
        if status == 401 and not request.url.path.startswith("/api/"):
            # Pages send people to the login form instead of showing a JSON error.
            return login_redirect(request.url.path)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(
            _body(exc.error_id, exc.message, exc.details), status_code=status, headers=headers
        )

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The database restarted or is unreachable: a retryable 503 in our shape, not a bare 500.
        log.warning("database unavailable: %s", type(exc.orig).__name__)
        return JSONResponse(
            _body("database_unavailable", "the database is not reachable; retry shortly"),
            status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(StatementError)
    async def database_rejected_value(request: Request, exc: StatementError) -> JSONResponse:
        # Safety net for values the schema let through but the database cannot store or compare: an id
        # beyond INTEGER, a NUL byte in text (hardening fuzz). A 422 with our shape, never a 500.
        if isinstance(exc, DataError) or isinstance(exc.orig, ValueError | DataError):
            log.info("database rejected a request value: %s", type(exc.orig).__name__)
            return JSONResponse(
                _body("invalid_value", "a value in the request is out of range or not storable"),
                status_code=422,
            )
        raise exc

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": list(err.get("loc", ())),
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        return JSONResponse(_body("validation_failed", "request is invalid", details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_id = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(
            _body(error_id, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "")
        log.exception("unhandled error request_id=%s", request_id)
        return JSONResponse(
            _body("internal_error", "internal error", {"request_id": request_id}), status_code=500
        )
