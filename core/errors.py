"""Errors are data: a stable `error_id`, a human `message`, and structured `details`.

    DomainError
    ├── NotFound
    ├── Conflict
    ├── ValidationFailed
    ├── PermissionDenied
    └── AuthenticationFailed

HTTP status codes live only in `api/errors.py`.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    error_id = "error"

    def __init__(self, message: str, *, details: Any = None, error_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if error_id is not None:
            self.error_id = error_id


class NotFound(DomainError):
    error_id = "not_found"


class Conflict(DomainError):
    error_id = "conflict"


class ValidationFailed(DomainError):
    error_id = "validation_failed"


class PermissionDenied(DomainError):
    error_id = "permission_denied"


class AuthenticationFailed(DomainError):
    error_id = "authentication_failed"


class TooManyAttempts(DomainError):
    error_id = "too_many_attempts"
