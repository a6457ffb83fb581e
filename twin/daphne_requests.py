# SPDX-License-Identifier: AGPL-3.0-or-later
"""Daphne without Twisted's own parse of form bodies (``make demo`` serves through daphne).

Why: Twisted's ``http.Request.requestReceived`` parses every
``multipart/form-data`` or urlencoded POST body into ``request.args`` with the
standard library's e-mail parser before the request is handed on. Daphne
never reads ``args``: it passes the raw body to the ASGI application, and
Django parses it again. For a citizen's report with a 233 KiB photo that
first, unused parse cost about 6 ms of the server's CPU: with it daphne filed
74 reports/s over HTTP at 13.7 ms of server CPU each, without it 124–132/s at
7.7–8.3 ms (``bench/reports.py --http daphne``, 25 Nov 2026,
docs/benchmarks.md). Twisted has a switch for exactly this
(``parsePOSTFormSubmission=False``); daphne does not pass it, so
:func:`install` gives daphne a request class that does.

Nothing else changes: the body, headers and limits are daphne's and
Django's as before (``DATA_UPLOAD_MAX_MEMORY_SIZE`` and the upload checks
still apply). Without daphne installed this does nothing.
"""
from __future__ import annotations

import inspect


def install() -> bool:
    """Make daphne's HTTP requests skip Twisted's form parse; ``True`` when daphne is there to change."""
    try:
        from daphne import http_protocol
        from twisted.web import http
    except ImportError:
        return False
    if getattr(http_protocol.WebRequest, "skips_form_parse", False):
        return True
    if "parsePOSTFormSubmission" not in inspect.signature(http.Request.__init__).parameters:
        return False          # an older Twisted parses anyway; nothing to switch off

    class WebRequestWithoutFormParse(http_protocol.WebRequest):
        """daphne's request; Twisted leaves the body to the ASGI application (see the module docstring)."""

        skips_form_parse = True

        def __init__(self, *args, **kwargs):
            kwargs["parsePOSTFormSubmission"] = False
            super().__init__(*args, **kwargs)

    # HTTPFactory.buildProtocol reads this module global for every new connection.
    http_protocol.WebRequest = WebRequestWithoutFormParse
    return True


__all__ = ["install"]
