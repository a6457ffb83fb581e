# SPDX-License-Identifier: AGPL-3.0-or-later
"""Live-push settings, read from ``settings.LIVE`` when used (never at import).

Tests change ``settings.LIVE`` and call :func:`ingestion.live.reset` so the
publisher and the hub pick the new values up.
"""
from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from ingestion.config import BrokerConfig

logger = logging.getLogger(__name__)


class LiveConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    broker_url: str = Field(default="", title="Broker URL",
                            description="mqtt://host:port of the bus; empty = settings.MQTT_URL")
    topic_root: str = Field(default="city", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]*$", title="Topic root",
                            description="Live topics are {root}/{city}/events/... and {root}/{city}/features/...")
    coalesce_ms: int = Field(default=100, ge=0, le=10_000, title="Coalescing window",
                             description="At most one message per feature per client in this window; latest wins")
    seen_interval_s: float = Field(default=10, ge=0, title="Liveness interval",
                                   description="A feature whose only change is last_seen is republished at most "
                                               "this often (status changes always are)")
    position_interval_s: float = Field(default=1.0, ge=0, title="Position interval",
                                       description="A moving feature's new position is republished at most "
                                                   "this often (the newest one at that moment)")
    max_queued: int = Field(default=10_000, ge=10, title="Publisher queue bound",
                            description="Messages held by a process's publisher while the broker is away")
    max_pending: int = Field(default=5_000, ge=10, title="Client backlog bound",
                             description="Messages waiting for one WebSocket client before it is closed as too slow")
    ready_timeout_s: float = Field(default=5, ge=0, title="Hub ready wait",
                                   description="How long a subscribe waits for the hub's MQTT subscription")

    def endpoint(self) -> tuple[str, int, bool, str | None, str | None]:
        """(host, port, tls, username, password) of the broker."""
        return BrokerConfig(url=self.broker_url).endpoint()


def live_config() -> LiveConfig:
    """The current configuration (``settings.LIVE`` over the defaults, broker from ``MQTT_URL``)."""
    from django.conf import settings

    values = dict(getattr(settings, "LIVE", {}) or {})
    if not values.get("broker_url"):
        values["broker_url"] = settings.MQTT_URL
    return LiveConfig.model_validate(values)


__all__ = ["LiveConfig", "live_config"]
