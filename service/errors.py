"""Errors the domain services raise; the API turns each into its status code and
`{"error": "<reason>", ...extra}` (see service/api/app.py)."""
from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, **extra: Any):
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


class NotFound(ServiceError):
    status_code = 404


class Forbidden(ServiceError):
    status_code = 403


class Conflict(ServiceError):
    """The thing is not in a state that allows the request (409)."""

    status_code = 409


class Invalid(ServiceError):
    """The request is well-formed but its content is refused (422)."""

    status_code = 422
