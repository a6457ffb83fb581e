# SPDX-License-Identifier: AGPL-3.0-or-later
"""Configuration of the ingestion workers (pydantic, unknown keys refused).

Defaults suit the project-local Mosquitto; a deployment overrides them in a
TOML file (``twin run-ingest --config FILE`` or ``INGEST_CONFIG``). Secrets
are written as ``${ENV_NAME}`` and resolved when the configuration loads,
never at import (frigate's ``config/env.py`` reads at import: we don't), so
a missing secret is a clear start-up error, not a late connection failure.
"""
from __future__ import annotations

import os
import re
import socket
import tomllib
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_env(value: Any) -> Any:
    """Replace every ``${NAME}`` in a string by the environment variable NAME.

    >>> os.environ["CT_DOCTEST_SECRET"] = "s3"
    >>> resolve_env("pw-${CT_DOCTEST_SECRET}")
    'pw-s3'
    """
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]

    return _ENV_REF.sub(substitute, value)


EnvStr = Annotated[str, BeforeValidator(resolve_env)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerConfig(Section):
    url: EnvStr = Field(default="", title="Broker URL",
                        description="mqtt://host:port or mqtts://host:port; empty = settings.MQTT_URL")
    username: EnvStr | None = Field(default=None, title="Username", description="Broker login of the worker")
    password: EnvStr | None = Field(default=None, title="Password", description="Write ${ENV_NAME}, never the value")
    keepalive_s: int = Field(default=30, ge=5, le=3600, title="Keep-alive", description="MQTT keep-alive, seconds")
    reconnect_min_s: int = Field(default=1, ge=1, title="Reconnect back-off start", description="seconds")
    reconnect_max_s: int = Field(default=30, ge=1, title="Reconnect back-off cap", description="seconds")
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=60, title="Session expiry",
                                  description="How long the broker keeps the worker's queue while it is away")
    receive_maximum: int = Field(default=4000, ge=1, le=65535, title="Receive maximum",
                                 description="Unacknowledged QoS 1 messages the broker may send at once; "
                                 "2-4 x batch.max_messages keeps messages coming while a batch commits")
    client_id_prefix: str = Field(default="citytwin-ingest", pattern=r"^[A-Za-z0-9_.-]{1,60}$",
                                  title="Client id prefix", description="Client id = PREFIX-WORKER")

    @model_validator(mode="after")
    def _check(self) -> BrokerConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    def endpoint(self) -> tuple[str, int, bool, str | None, str | None]:
        """(host, port, tls, username, password); credentials in the URL are used when none are configured."""
        parts = urlsplit(self.url)
        if parts.scheme not in {"mqtt", "mqtts", "tcp", "ssl"} or not parts.hostname:
            raise ValueError(f"broker url {self.url!r} must look like mqtt://host:port")
        tls = parts.scheme in {"mqtts", "ssl"}
        port = parts.port or (8883 if tls else 1883)
        username = self.username if self.username is not None else (unquote(parts.username) if parts.username else None)
        password = self.password if self.password is not None else (unquote(parts.password) if parts.password else None)
        return parts.hostname, port, tls, username, password


class TopicConfig(Section):
    root: str = Field(default="city", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/-]*$", title="Topic root",
                      description="First topic level(s) of the scheme (docs/ingestion.md)")
    city: str = Field(default="+", pattern=r"^(\+|[a-z0-9][a-z0-9-]{0,62})$", title="City",
                      description="City slug this worker serves, or + for all")


class WorkerConfig(Section):
    name: str = Field(default_factory=lambda: socket.gethostname().split(".")[0] or "worker",
                      pattern=r"^[A-Za-z0-9_.-]{1,60}$", title="Worker name",
                      description="Stable name: the client id and the persistent session depend on it")
    shared_group: str = Field(default="citytwin-ingest", pattern=r"^[A-Za-z0-9_.-]{1,60}$", title="Shared group",
                              description="MQTT 5 shared-subscription group; workers in one group split the stream")
    gc_threshold: int = Field(default=20_000, ge=0, le=1_000_000, title="GC threshold",
                              description="A worker process freezes what it loaded at start out of the cyclic "
                                          "garbage collector, turns automatic collection off and collects between "
                                          "batches once this many allocations survived; 0 leaves Python's defaults")


class LimitsConfig(Section):
    max_payload_bytes: int = Field(default=64 * 1024, ge=256, title="Largest payload",
                                   description="Bigger messages go to dead letters as oversized")
    keep_bytes: int = Field(default=4096, ge=0, title="Bytes kept of an oversized payload",
                            description="The dead letter keeps this many first bytes and the true size")
    max_readings_per_message: int = Field(default=5000, ge=1, title="Readings per message",
                                          description="Longest list a batched payload may carry")
    max_future_s: int = Field(default=300, ge=0, title="Clock skew allowed",
                              description="Readings further in the future than this are refused, seconds")
    max_age_s: int = Field(default=7 * 24 * 3600, ge=60, title="Oldest reading",
                           description="Readings older than this when received are refused, seconds")


class BatchConfig(Section):
    max_readings: int = Field(default=20_000, ge=1, title="Readings per batch", description="Flush at this many")
    max_messages: int = Field(default=1000, ge=1, title="Messages per batch",
                              description="Flush at this many messages; at most broker.receive_maximum")
    flush_interval_ms: int = Field(default=20, ge=1, le=60_000, title="Flush delay",
                                   description="Flush a batch this long after its first message arrived, if it "
                                   "has not filled up before; under load batches fill while the previous one "
                                   "commits, so they grow by themselves")
    urgent_streams: tuple[str, ...] = Field(
        default=("alert",), title="Urgent streams",
        description="A message on one of these streams (device alerts: fire alarms, camera alerts) flushes its "
                    "batch at once instead of after the flush delay: an alarm does not wait for company")
    last_seen_resolution_s: float = Field(default=5, ge=0, title="last_seen resolution",
                                          description="Rewrite a device's last_seen only when it moved by this "
                                          "many seconds (or the device reported a status); 0 = every batch")
    retry_max_s: float = Field(default=30, gt=0, title="Storage retry cap",
                               description="Longest pause between attempts while PostgreSQL is unreachable")


class DeviceCacheConfig(Section):
    ttl_s: float = Field(default=60, ge=0, title="Device cache lifetime", description="Known devices, seconds")
    negative_ttl_s: float = Field(default=5, ge=0, title="Unknown-device cache lifetime",
                                  description="Short, so a device registered now is accepted within seconds")


class IngestConfig(Section):
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    topics: TopicConfig = Field(default_factory=TopicConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    devices: DeviceCacheConfig = Field(default_factory=DeviceCacheConfig)

    @model_validator(mode="after")
    def _batch_fits_broker(self) -> IngestConfig:
        # Acks are withheld until commit, so the broker stops sending at
        # receive_maximum unacknowledged messages: a bigger batch would only
        # ever be flushed by the timer.
        if self.batch.max_messages > self.broker.receive_maximum:
            raise ValueError("batch.max_messages must not exceed broker.receive_maximum")
        return self

    @property
    def client_id(self) -> str:
        return f"{self.broker.client_id_prefix}-{self.worker.name}"


def load_config(path: str | Path | None = None, **overrides: Any) -> IngestConfig:
    """Read the TOML file (if any), apply ``overrides`` per section, resolve secrets.

    ``overrides`` are section dicts, e.g. ``worker={"name": "w1"}``; the broker
    URL defaults to ``settings.MQTT_URL``.
    """
    from django.conf import settings

    data: dict[str, Any] = {}
    path = path or getattr(settings, "INGEST_CONFIG", None) or os.environ.get("INGEST_CONFIG")
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    for section, values in overrides.items():
        data[section] = {**data.get(section, {}), **values}
    broker = data.setdefault("broker", {})
    if not broker.get("url"):
        broker["url"] = settings.MQTT_URL
    return IngestConfig.model_validate(data)


__all__ = ["BatchConfig", "BrokerConfig", "DeviceCacheConfig", "EnvStr", "IngestConfig", "LimitsConfig",
           "TopicConfig", "WorkerConfig", "load_config", "resolve_env"]
