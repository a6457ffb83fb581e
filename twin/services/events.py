# SPDX-License-Identifier: AGPL-3.0-or-later
"""Geo-event lifecycle: raise (or update) an event, move it through its states."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction

from twin.errors import InvalidInput, InvalidTransition, NotFound
from twin.models import AdminArea, AdminLevel, Agency, EventStatus, Feature, GeoEvent, GeoEventTransition, Layer
from twin.models.events import ALLOWED_TRANSITIONS
from twin.services import announce
from twin.services.areas import agencies_for, area_containing


@dataclass(frozen=True, slots=True)
class RoutedTo:
    """A routing decided by the producer (``ingestion.routing``), which records why in the payload."""

    ward_id: int | None
    agency_id: int | None


@dataclass(frozen=True, slots=True)
class EventDraft:
    """What a producer (adapter, rule, operator) knows about an event.

    ``route`` is set by producers that resolve the responsible agency
    themselves; ``None`` routes here through :func:`agencies_for`.
    """

    kind: str
    category: str
    geom: GEOSGeometry
    occurred_at: datetime
    severity: int = 3
    title: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    source_feature_id: int | None = None
    layer_slug: str | None = None
    source_key: str | None = None
    producer: str = "system"
    route: RoutedTo | None = None


def raise_event(draft: EventDraft) -> tuple[GeoEvent, bool]:
    """Create the event, or update it when ``source_key`` was seen before.

    The place is resolved to its ward and the responsible agency (first in
    the routing chain). Returns ``(event, created)``.
    """
    if draft.geom.srid is None:
        raise InvalidInput("event geometry has no SRID")
    if not draft.geom.valid:
        raise InvalidInput(f"invalid event geometry: {draft.geom.valid_reason}")
    if draft.occurred_at.tzinfo is None:
        raise InvalidInput("occurred_at must carry a time zone")
    geom = draft.geom.transform(4326, clone=True) if draft.geom.srid != 4326 else draft.geom
    if draft.route is not None:
        ward = AdminArea.objects.filter(pk=draft.route.ward_id).first() if draft.route.ward_id else None
        agencies = list(Agency.objects.filter(pk=draft.route.agency_id)) if draft.route.agency_id else []
    else:
        ward = area_containing(geom, AdminLevel.WARD)
        province = ward.parent if ward else area_containing(geom, AdminLevel.PROVINCE)
        agencies = agencies_for(ward, province, draft.category)
    layer = Layer.objects.filter(slug=draft.layer_slug).first() if draft.layer_slug else None
    if draft.layer_slug and layer is None:
        raise InvalidInput(f"unknown layer {draft.layer_slug!r}")
    if draft.source_feature_id and not Feature.objects.filter(pk=draft.source_feature_id).exists():
        raise InvalidInput(f"unknown source feature {draft.source_feature_id}")
    values = dict(kind=draft.kind, category=draft.category, severity=draft.severity, title=draft.title, geom=geom,
                  occurred_at=draft.occurred_at, payload=dict(draft.payload), layer=layer, ward=ward,
                  source_feature_id=draft.source_feature_id, agency=agencies[0] if agencies else None)
    with transaction.atomic():
        if draft.source_key:
            event, created = GeoEvent.objects.select_for_update().update_or_create(
                source_key=draft.source_key, defaults=values)
        else:
            event, created = GeoEvent.objects.create(**values), True
        if created:
            GeoEventTransition.objects.create(event=event, from_status="", to_status=EventStatus.NEW,
                                              actor_label=draft.producer)
        announce.event_changed(event.pk, "created" if created else "updated")
    return event, created


def transition_event(event_id: int, to_status: str, *, actor: AbstractBaseUser | None = None,
                     actor_label: str | None = None, note: str = "") -> GeoEvent:
    """Move an event along its lifecycle and record who did it."""
    if to_status not in EventStatus.values:
        raise InvalidInput(f"unknown status {to_status!r}; one of {', '.join(EventStatus.values)}")
    with transaction.atomic():
        event = GeoEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None:
            raise NotFound(f"no event {event_id}")
        if to_status not in ALLOWED_TRANSITIONS[event.status]:
            raise InvalidTransition(f"event {event_id} is {event.status}; it cannot become {to_status}")
        GeoEventTransition.objects.create(
            event=event, from_status=event.status, to_status=to_status, actor=actor, note=note,
            actor_label=actor_label or (actor.get_username() if actor else "system"),
        )
        event.status = to_status
        event.save(update_fields=["status", "updated_at"])
        announce.event_changed(event.pk, "transition")
    return event
