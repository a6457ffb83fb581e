# SPDX-License-Identifier: AGPL-3.0-or-later
"""Report errors: each carries its HTTP status and a stable code (twin.errors)."""
from __future__ import annotations

from http import HTTPStatus

from twin.errors import InvalidInput, TwinError


class OutsideCity(InvalidInput):
    code = "OutsideCity"


class MissingLocation(InvalidInput):
    code = "MissingLocation"


class BadMedia(InvalidInput):
    code = "InvalidMedia"


class MediaTooLarge(TwinError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "MediaTooLarge"


class UnsafeText(InvalidInput):
    code = "UnsafeText"


class RateLimited(TwinError):
    status = HTTPStatus.TOO_MANY_REQUESTS
    code = "RateLimited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
