# SPDX-License-Identifier: AGPL-3.0-or-later
"""Helpers for the rule tests: devices as real features, readings as the sink hands them over."""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from shapely.geometry import Point

from ingestion.messages import Reading
from ingestion.models import RuleState
from tests.twin.factories import NGO_MON, make_layer
from twin.models import Feature, GeoEvent
from twin.services import FeatureRow, write_features

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
_ids = itertools.count(1)


def make_device(kind: str = "sensor", *, at: tuple[float, float] = NGO_MON, external_id: str | None = None,
                **properties: Any) -> Feature:
    """A device feature in a fresh layer of ``kind`` (sensor properties default to a water-level gauge)."""
    layer = make_layer(kind)
    if kind == "sensor":
        properties = {"sensor_type": "water_level", "unit": "cm", **properties}
    elif kind == "boat":
        properties = {"mmsi": f"{574000000 + next(_ids):09d}", **properties}
    external_id = external_id or f"dev-{next(_ids)}"
    write_features(layer, [FeatureRow(external_id=external_id, geom=Point(*at), properties=properties,
                                      name=f"Thiết bị {external_id}")])
    return Feature.objects.select_related("layer").get(layer=layer, external_id=external_id)


def reading(device: Feature, at: datetime | timedelta, values: Mapping[str, Any], *, stream: str = "water_level",
            lon: float | None = None, lat: float | None = None) -> Reading:
    """A reading of ``device`` at ``at`` (a time, or an offset from T0)."""
    when = T0 + at if isinstance(at, timedelta) else at
    return Reading(feature_id=device.pk, device_id=device.external_id, kind=device.layer.kind, stream=stream,
                   time=when, values=dict(values), lon=lon, lat=lat, city="hue")


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def events_of(device: Feature, kind: str | None = None) -> list[GeoEvent]:
    query = GeoEvent.objects.filter(source_feature=device).order_by("occurred_at", "id")
    return list(query.filter(kind=kind) if kind else query)


def state_of(rule: str, subject: str) -> RuleState:
    return RuleState.objects.get(rule=rule, subject=subject)


def history(event: GeoEvent) -> list[tuple[str, str, str]]:
    return [(h.from_status, h.to_status, h.actor_label) for h in event.history.all()]
