# SPDX-License-Identifier: AGPL-3.0-or-later
"""Errors that carry their HTTP status and a stable code.

Views catch :class:`TwinError` once and answer with ``status`` and the
user-safe ``message``; commands print the message and exit non-zero.
"""
from __future__ import annotations

from http import HTTPStatus


class TwinError(Exception):
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    code = "InternalError"

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])

    def as_dict(self) -> dict:
        body = {"code": self.code, "description": self.message}
        if self.problems:
            body["problems"] = self.problems
        return body


class InvalidInput(TwinError):
    status = HTTPStatus.BAD_REQUEST
    code = "InvalidParameterValue"


class ImportRejected(InvalidInput):
    """A file or batch was refused; nothing of it was written."""

    code = "ImportRejected"

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        shown = self.problems[:50]
        more = len(self.problems) - len(shown)
        lines = [self.message, *("  - " + p for p in shown)]
        if more:
            lines.append(f"  ... and {more} more")
        return "\n".join(lines)


class NotAuthenticated(TwinError):
    status = HTTPStatus.UNAUTHORIZED
    code = "NotAuthenticated"


class PermissionDenied(TwinError):
    status = HTTPStatus.FORBIDDEN
    code = "PermissionDenied"


class NotFound(TwinError):
    status = HTTPStatus.NOT_FOUND
    code = "NotFound"


class InvalidTransition(TwinError):
    status = HTTPStatus.CONFLICT
    code = "InvalidTransition"


class PayloadTooLarge(TwinError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "PayloadTooLarge"
