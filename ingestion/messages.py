# SPDX-License-Identifier: AGPL-3.0-or-later
"""Typed messages flowing from adapters to storage and rules.

The one path: ``raw MQTT message → adapter parses (pydantic) → Reading →
sink (batched COPY through twin.services.record_observations) → rules →
twin.services.raise_event``. Adapters never touch models; rules never parse
bytes.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple


class Reading(NamedTuple):
    """One validated observation of a registered device.

    ``message_id`` identifies the source message so a redelivery (MQTT QoS 1
    may deliver twice) is stored once. A named tuple, not a frozen
    dataclass: one is built per reading, and a frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field) cost ~8× more —
    several µs per reading at 100,000 readings a second.
    """

    feature_id: int
    device_id: str
    kind: str                      # the device's layer kind: sensor, camera, boat ...
    stream: str                    # the topic's stream: air, water_level, fire, position ...
    time: datetime                 # aware, UTC
    values: Mapping[str, Any]
    lon: float | None = None
    lat: float | None = None
    city: str = ""
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that could not be accepted; it goes to the dead-letter store."""

    topic: str
    payload: bytes
    reason: str
    received_at: datetime
    details: Mapping[str, Any] = field(default_factory=dict)
