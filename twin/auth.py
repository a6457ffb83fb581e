# SPDX-License-Identifier: AGPL-3.0-or-later
"""Who is calling, and may they? Authentication and role checks for JSON views.

A request is authenticated either by its session (the browser, logged in
through the admin) or by ``Authorization: Bearer ct_...`` (API clients; see
:func:`twin.services.authenticate_token`). Roles are checked against the
capability table in :mod:`twin.roles`.

Views are written as::

    @json_api(methods=("POST",))
    @requires(Capability.HANDLE_EVENTS)
    def transition(request, event_id): ...

:func:`json_api` catches :class:`~twin.errors.TwinError` once and answers
``{"code", "description"}`` with the error's status. Details go to the log;
the response carries only user-safe text.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import wraps
from http import HTTPStatus

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from twin.errors import NotAuthenticated, PermissionDenied, TwinError
from twin.roles import Capability, has_capability
from twin.services import authenticate_token

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# RFC 6750 §3: a 401 names the scheme; ``error="invalid_token"`` when one was sent but refused.
CHALLENGE = 'Bearer realm="citytwin"'
ANONYMOUS_MESSAGE = "Authentication required: log in, or send 'Authorization: Bearer <API token>'."
BAD_TOKEN_MESSAGE = "The API token is invalid, expired or revoked."


class MethodNotAllowed(TwinError):
    status = HTTPStatus.METHOD_NOT_ALLOWED
    code = "MethodNotAllowed"


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, returning the failure reason instead of a page."""

    def _reject(self, request, reason):
        return reason


def _enforce_csrf(request: HttpRequest) -> None:
    # Session cookies ride along on cross-site requests, so session-authenticated
    # writes need the CSRF token; bearer tokens are never sent implicitly.
    check = _CsrfCheck(lambda r: HttpResponse())
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        logger.warning("CSRF check failed for %s %s: %s", request.method, request.path, reason)
        raise PermissionDenied("CSRF check failed: reload the page and try again.")


def authenticate_request(request: HttpRequest):
    """The user behind ``request`` (possibly anonymous), by bearer token or session.

    A request that sends an ``Authorization`` header is judged by it alone:
    a bad token is a 401 even when a session cookie is present too.
    Sets ``request.user`` and ``request.auth_method`` (``token``, ``session`` or ``None``).
    """
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            logger.info("refused Authorization scheme %r on %s", scheme[:20], request.path)
            raise NotAuthenticated(BAD_TOKEN_MESSAGE)
        try:
            user = authenticate_token(credentials.strip())
        except NotAuthenticated as exc:
            logger.info("API token refused on %s: %s", request.path, exc.message)
            raise NotAuthenticated(BAD_TOKEN_MESSAGE) from None
        request.user, request.auth_method = user, "token"
        return user
    user = getattr(request, "user", None) or AnonymousUser()
    request.user = user
    request.auth_method = "session" if user.is_authenticated else None
    if user.is_authenticated and request.method not in SAFE_METHODS:
        _enforce_csrf(request)
    return user


def error_response(exc: TwinError, request: HttpRequest | None = None) -> JsonResponse:
    response = JsonResponse(exc.as_dict(), status=int(exc.status))
    if isinstance(exc, NotAuthenticated):
        sent_token = request is not None and bool(request.headers.get("Authorization"))
        response["WWW-Authenticate"] = CHALLENGE + (', error="invalid_token"' if sent_token else "")
    return response


def json_api(view: Callable | None = None, *, methods: Iterable[str] = ("GET",)):
    """Authenticate, run the view, and turn :class:`TwinError` into a JSON answer.

    The view is CSRF-exempt as far as Django's middleware goes; the check is
    made here instead, for session-authenticated writes only.
    """
    allowed = frozenset(m.upper() for m in methods) | ({"HEAD"} if "GET" in {m.upper() for m in methods} else set())

    def decorate(func: Callable) -> Callable:
        @csrf_exempt
        @wraps(func)
        def wrapper(request: HttpRequest, *args, **kwargs):
            try:
                if request.method not in allowed:
                    raise MethodNotAllowed(f"{request.method} is not allowed here; use {', '.join(sorted(allowed))}")
                authenticate_request(request)
                return func(request, *args, **kwargs)
            except TwinError as exc:
                logger.info("%s %s -> %s %s: %s", request.method, request.path, int(exc.status), exc.code,
                            exc.message)
                response = error_response(exc, request)
                if isinstance(exc, MethodNotAllowed):
                    response["Allow"] = ", ".join(sorted(allowed))
                return response
            except Exception:  # the client gets a code, the log gets the traceback
                logger.exception("%s %s failed", request.method, request.path)
                return error_response(TwinError("Internal error; it has been logged."))

        return wrapper

    return decorate(view) if view is not None else decorate


def check_capability(user, capability: Capability) -> None:
    """Raise 401 for anonymous users and 403 when the role lacks ``capability``."""
    if user is None or not user.is_authenticated:
        raise NotAuthenticated(ANONYMOUS_MESSAGE)
    if not has_capability(user, capability):
        logger.info("user %s lacks %s", user.get_username(), capability.value)
        raise PermissionDenied("Your role does not allow this.")


def requires(capability: Capability) -> Callable[[Callable], Callable]:
    """Decorate a :func:`json_api` view so only users with ``capability`` reach it."""

    def decorate(func: Callable) -> Callable:
        @wraps(func)
        def wrapper(request: HttpRequest, *args, **kwargs):
            check_capability(request.user, capability)
            return func(request, *args, **kwargs)

        wrapper.required_capability = capability
        return wrapper

    return decorate
