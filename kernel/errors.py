"""Errors a caller can act on, raised by domain and application code.

The gRPC layer maps each to its status code (kernel.grpcserver); anything
else that escapes a handler is a bug and becomes INTERNAL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One field of a request that is wrong, and why."""

    field: str
    description: str


class GovhallError(Exception):
    """A failure the caller can understand and fix."""

    def __init__(self, message: str, *, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations: list[FieldViolation] = violations or []


class InvalidArgument(GovhallError):
    """The request itself is wrong, whatever the state of the system."""


class NotFound(GovhallError):
    """The thing the request names does not exist."""


class AlreadyExists(GovhallError):
    """The thing the request would create exists already."""


class FailedPrecondition(GovhallError):
    """The request is well formed but the system is not in a state to take it."""


class PermissionDenied(GovhallError):
    """The caller is known but may not do this."""


class Unauthenticated(GovhallError):
    """The caller could not be identified."""




class Unavailable(GovhallError):
    """A system this call depends on could not be reached in time; the call may be retried."""
