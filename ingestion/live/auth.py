# SPDX-License-Identifier: AGPL-3.0-or-later
"""Who is on the other end of a WebSocket, and what may they receive?

Browsers cannot set headers on a WebSocket, so an API token may come three
ways (judged alone when present, like ``twin.auth.authenticate_request``):

- ``Authorization: Bearer ct_...`` (scripts, the benchmark);
- the subprotocol list ``["citytwin.live", "bearer.ct_..."]`` (browsers; the
  server answers ``citytwin.live``, never echoing the token);
- ``?token=ct_...`` (last resort: query strings end up in proxy and uvicorn
  access logs; daphne logs the path only).

Otherwise the session cookie counts, and then the ``Origin`` must be one of
ours (``ALLOWED_HOSTS`` or ``CSRF_TRUSTED_ORIGINS``): a cookie rides along on
a cross-site WebSocket, and there is no CSRF token to stop a hostile page
from reading the feed (cross-site WebSocket hijacking). Tokens are never logged.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import validate_host

from twin.errors import NotAuthenticated
from twin.roles import Capability, capabilities_of

logger = logging.getLogger(__name__)

APP_PROTOCOL = "citytwin.live"
TOKEN_PROTOCOL_PREFIX = "bearer."
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


@dataclass(frozen=True, slots=True)
class Rights:
    """What the live feed may carry to this user."""

    events: bool           # READ_EVENTS
    private_layers: bool   # READ_PRIVATE_LAYERS (public layers are readable by anyone)


@dataclass(frozen=True, slots=True)
class Refusal:
    code: str
    description: str
    close_code: int


@dataclass(frozen=True, slots=True)
class WsAuth:
    user: Any = None
    method: str | None = None
    rights: Rights | None = None
    refusal: Refusal | None = None
    subprotocol: str | None = None


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {name.decode("latin1").lower(): value.decode("latin1") for name, value in scope.get("headers", [])}


def _token(scope: dict[str, Any], headers: dict[str, str]) -> tuple[str | None, bool]:
    """``(token, sent)``: ``sent`` is True when credentials were offered at all, even malformed."""
    if header := headers.get("authorization", "").strip():
        scheme, _, credentials = header.partition(" ")
        return (credentials.strip() or None) if scheme.lower() == "bearer" else None, True
    for protocol in scope.get("subprotocols") or []:
        if protocol.startswith(TOKEN_PROTOCOL_PREFIX):
            return protocol[len(TOKEN_PROTOCOL_PREFIX):] or None, True
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    if "token" in query:
        return query["token"][0] or None, True
    return None, False


def _token_user(token: str):
    from twin.services import authenticate_token

    try:
        return authenticate_token(token)
    except NotAuthenticated as exc:
        logger.info("live: API token refused: %s", exc.message)
        return None


def rights_of(user) -> Rights:
    caps = capabilities_of(user)
    return Rights(events=Capability.READ_EVENTS in caps, private_layers=Capability.READ_PRIVATE_LAYERS in caps)


def origin_allowed(origin: str | None) -> bool:
    """Is ``origin`` (the browser's ``Origin`` header) one of this site's?

    >>> origin_allowed("http://127.0.0.1:8000"), origin_allowed("https://evil.example"), origin_allowed(None)
    (True, False, False)
    """
    if not origin:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    host = urlsplit(origin).hostname
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


async def authenticate_websocket(scope: dict[str, Any]) -> WsAuth:
    """Authenticate a ``websocket`` scope (after Channels' ``AuthMiddlewareStack`` set ``scope["user"]``)."""
    headers = _headers(scope)
    offered = scope.get("subprotocols") or []
    subprotocol = APP_PROTOCOL if APP_PROTOCOL in offered else None
    token, sent = _token(scope, headers)
    if sent:
        user = await database_sync_to_async(_token_user)(token) if token else None
        if user is None:
            return WsAuth(refusal=Refusal("NotAuthenticated", "The API token is invalid, expired or revoked.",
                                          CLOSE_NOT_AUTHENTICATED), subprotocol=subprotocol)
        method = "token"
    else:
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            return WsAuth(refusal=Refusal("NotAuthenticated", "Authentication required: log in, or send an API "
                                          "token.", CLOSE_NOT_AUTHENTICATED), subprotocol=subprotocol)
        if not origin_allowed(headers.get("origin")):
            logger.warning("live: refused a session WebSocket from origin %r", headers.get("origin", "")[:100])
            return WsAuth(refusal=Refusal("PermissionDenied", "Cross-site WebSocket refused.", CLOSE_FORBIDDEN),
                          subprotocol=subprotocol)
        method = "session"
    rights = await database_sync_to_async(rights_of)(user)
    if not (rights.events or rights.private_layers):
        logger.info("live: user %s has no role that reads live data", user.get_username())
        return WsAuth(refusal=Refusal("PermissionDenied", "Your role does not allow the live feed.", CLOSE_FORBIDDEN),
                      subprotocol=subprotocol)
    return WsAuth(user=user, method=method, rights=rights, subprotocol=subprotocol)


__all__ = ["APP_PROTOCOL", "CLOSE_FORBIDDEN", "CLOSE_NOT_AUTHENTICATED", "Refusal", "Rights", "WsAuth",
           "authenticate_websocket", "origin_allowed", "rights_of"]
