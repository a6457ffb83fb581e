# SPDX-License-Identifier: AGPL-3.0-or-later
"""The ``sms`` channel through a provider's HTTP API: one JSON POST per message.

Configured by the Django setting ``REPORTS_SMS_GATEWAY`` (a dict) or, when
that is absent, by the environment (``REPORTS_SMS_URL``, ``REPORTS_SMS_TOKEN``,
``REPORTS_SMS_SENDER``, ``REPORTS_SMS_TIMEOUT_S``). With no URL the channel
stays the black hole of :mod:`reports.services.notify`. The token may be
written ``${ENV_NAME}`` in the setting: it is resolved when the config loads
(at start-up, in ``AppConfig.ready``), never at import.

The request (most Vietnamese and international SMS APIs take this shape or
sit behind a small adapter that does)::

    POST <url>
    Authorization: Bearer <token>
    Content-Type: application/json
    Idempotency-Key: citytwin-notification-<outbox id>

    {"to": "<phone>", "from": "<sender>", "text": "<message>", "reference": "citytwin-notification-<outbox id>"}

Any 2xx answer means accepted. Anything else (an error status, a timeout, a
refused connection) raises :class:`SmsGatewayError`, which the outbox records
on the row and retries later with back-off (:func:`reports.services.notify.send_pending`);
the same ``reference`` lets the provider drop a duplicate when an answer was lost.

Privacy: the phone number goes in the request body only. Errors name the
HTTP status or the network failure, never the body sent or the provider's
answer (which may echo the number), so neither the outbox nor a log line
can hold it.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from ingestion.config import EnvStr
from reports.models import Notification, Reporter

logger = logging.getLogger(__name__)

ENV_PREFIX = "REPORTS_SMS_"


class SmsGatewayError(Exception):
    """The provider did not accept the message (status or network failure; no personal data in the text)."""


class HttpSmsConfig(BaseModel):
    """``REPORTS_SMS_GATEWAY``: where and how to hand SMS messages to the provider."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    url: HttpUrl = Field(title="Gateway URL", description="The provider's send endpoint (JSON POST).")
    token: EnvStr = Field(default="", title="API token", description="Sent as 'Authorization: Bearer <token>'; "
                          "write ${ENV_NAME} to read it from the environment.", repr=False)
    sender: str = Field(default="CityTwin", max_length=20, title="Sender",
                        description="Sender name or number registered with the provider (brand name).")
    timeout_s: float = Field(default=10.0, gt=0, le=120, title="Timeout",
                             description="Seconds to connect and to wait for the answer, each.")
    max_text: int = Field(default=640, ge=70, le=1600, title="Longest text",
                          description="Longer messages are cut (SMS are billed per 70-character UCS-2 part).")


def config_from_settings() -> HttpSmsConfig | None:
    """The gateway configuration, or ``None`` when no URL is set (the channel stays a black hole)."""
    raw: dict[str, Any] | None = getattr(settings, "REPORTS_SMS_GATEWAY", None)
    if raw is None:
        raw = {key: os.environ[ENV_PREFIX + key.upper()] for key in ("url", "token", "sender", "timeout_s")
               if os.environ.get(ENV_PREFIX + key.upper())}
    if not raw or not raw.get("url"):
        return None
    return HttpSmsConfig(**raw)


class HttpSmsSender:
    """A notification sender (``notify.Sender``) posting to the configured gateway."""

    def __init__(self, cfg: HttpSmsConfig) -> None:
        self.cfg = cfg

    def __call__(self, reporter: Reporter, note: Notification) -> None:
        if not reporter.phone:
            raise SmsGatewayError("the reporter left no phone number")
        reference = f"citytwin-notification-{note.pk}"
        body = json.dumps({"to": reporter.phone, "from": self.cfg.sender, "text": note.body[:self.cfg.max_text],
                           "reference": reference}, ensure_ascii=False).encode()
        request = urllib.request.Request(str(self.cfg.url), data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "Accept": "application/json",
            "Authorization": f"Bearer {self.cfg.token}", "Idempotency-Key": reference,
            "User-Agent": "CityTwin-notifications"})
        try:
            with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SmsGatewayError(f"the SMS gateway answered HTTP {exc.code}") from None
        except (TimeoutError, socket.timeout):
            raise SmsGatewayError(f"the SMS gateway did not answer within {self.cfg.timeout_s:g} s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise SmsGatewayError(f"the SMS gateway did not answer within {self.cfg.timeout_s:g} s") from None
            raise SmsGatewayError(f"the SMS gateway could not be reached ({type(reason).__name__})") from None
        if not 200 <= status < 300:
            raise SmsGatewayError(f"the SMS gateway answered HTTP {status}")
        logger.info("notification %s (report %s) accepted by the SMS gateway", note.pk, note.report_id)


__all__ = ["HttpSmsConfig", "HttpSmsSender", "SmsGatewayError", "config_from_settings"]
