# SPDX-License-Identifier: AGPL-3.0-or-later
"""Errors of the layers API, each with its HTTP status and OGC exception code.

They extend :class:`twin.errors.TwinError`, so ``as_dict()`` gives the OGC
exception body ``{"code", "description"}`` (OGC API – Features Part 1,
§7.5.1 "exception" schema). Views catch ``TwinError`` once; messages are
written for users and never carry SQL or server internals.
"""
from __future__ import annotations

from http import HTTPStatus

from twin.errors import InvalidInput, NotFound, TwinError

__all__ = ["InvalidInput", "NotFound", "NotSupported", "QueryTooExpensive", "UnknownProvider",
           "NotAcceptable"]


class NotSupported(InvalidInput):
    """The request is well-formed but asks for something this server does not implement."""

    code = "OperationNotSupported"


class QueryTooExpensive(InvalidInput):
    """The query ran past the statement timeout: the client must narrow it."""

    code = "QueryTooExpensive"


class NotAcceptable(TwinError):
    status = HTTPStatus.NOT_ACCEPTABLE
    code = "NotAcceptable"


class UnknownProvider(TwinError):
    """A layer kind names a provider type that is not registered (a configuration bug)."""

    code = "NoApplicableCode"
