# SPDX-License-Identifier: AGPL-3.0-or-later
"""A report's public faces: its feature in the city's reports layer and its geo-event.

Both are written only from :class:`~reports.models.Report` columns, never
from :class:`~reports.models.Reporter`: that is what keeps the reporter out
of tiles, exports, the layers API, live push and event payloads.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import shapely
from django.urls import reverse

from reports.models import Report, ReportStatus
from twin.models import City, EventStatus, Layer
from twin.services import EventDraft, FeatureRow, LayerSpec, RoutedTo, ensure_layer, raise_event, write_features
from twin.services.events import transition_event

EVENT_KIND = "citizen_report"
# Report status → geo-event status (the event lifecycle is coarser).
EVENT_STATUS = {
    ReportStatus.VERIFIED: EventStatus.ACKNOWLEDGED,
    ReportStatus.ASSIGNED: EventStatus.DISPATCHED,
    ReportStatus.RESOLVED: EventStatus.RESOLVED,
    ReportStatus.REJECTED: EventStatus.DISMISSED,
}


def reports_layer(city: City) -> Layer:
    """The city's public reports layer (``<city>-reports``), created on first use."""
    cached = getattr(city, "_reports_layer", None)   # per City instance: one look-up per filing
    if cached is not None:
        return cached
    slug = f"{city.slug}-reports"
    layer = Layer.objects.filter(slug=slug).select_related("city").first()
    if layer is None:
        layer = ensure_layer(LayerSpec(
            slug=slug, title_vi="Phản ánh hiện trường", title_en="Citizen field reports", kind="citizen_report",
            geometry_type="Point", is_public=True, description="Reports filed by residents and their outcome. "
            "The reporter's identity is never part of this layer.",
            attribution=city.attribution), city=city)
    city._reports_layer = layer
    return layer


@lru_cache(maxsize=1)
def _media_prefix() -> str:
    return reverse("reports:media", args=[0])[:-1]


def credit_source(layer: Layer, credit: str) -> Layer:
    """Add a data source to the layer's attribution (exports and maps show it), once."""
    if credit in layer.attribution:
        return layer
    spec = LayerSpec(slug=layer.slug, title_vi=layer.title_vi, title_en=layer.title_en, kind=layer.kind,
                     geometry_type=layer.geometry_type, style=layer.style, is_public=layer.is_public,
                     description=layer.description, attribution="; ".join(p for p in (layer.attribution, credit) if p))
    return ensure_layer(spec, city=layer.city)


def media_url(media_id: int) -> str:
    """Public URL of a photo (reversed once: ``reverse`` per photo showed up in the filing profile)."""
    return f"{_media_prefix()}{media_id}"


def feature_properties(report: Report, photo_ids: list[int] | None = None) -> dict[str, Any]:
    if photo_ids is None:
        photo_ids = list(report.media.filter(kind="photo").values_list("id", flat=True))
    closed = report.status in (ReportStatus.RESOLVED, ReportStatus.REJECTED)
    return {
        "category": report.category.code, "category_name": report.category.name_vi,
        "description": report.description, "channel": report.channel, "report_status": report.status,
        "reported_at": report.reported_at, "due_at": report.due_at, "address": report.address or None,
        "photos": [media_url(i) for i in photo_ids],
        "ward": report.ward.code if report.ward else None, "ward_name": report.ward.name_vi if report.ward else None,
        "agency": report.agency.code if report.agency else None,
        "agency_name": report.agency.name_vi if report.agency else None,
        "result": (report.result_text or report.reject_reason or None) if closed else None,
        "closed_at": report.closed_at, "overdue": report.overdue_at is not None,
    }


def feature_row(report: Report, photo_ids: list[int] | None = None) -> FeatureRow:
    return FeatureRow(external_id=str(report.pk), geom=shapely.Point(report.geom.x, report.geom.y),
                      name=f"{report.category.name_vi} #{report.pk}", properties=feature_properties(report, photo_ids))


def write_feature(report: Report, photo_ids: list[int] | None = None, *, link: bool = True) -> None:
    """Write (or rewrite) the report's feature through the single feature write path.

    ``link=False`` leaves saving ``report.feature`` to the caller (one update for feature and event).
    """
    layer = reports_layer(report.city)
    write_features(layer, [feature_row(report, photo_ids)], on_invalid="reject")
    if report.feature_id is None:
        report.feature = layer.features.only("id").get(external_id=str(report.pk))
        if link:
            Report.objects.filter(pk=report.pk).update(feature=report.feature)


def event_payload(report: Report) -> dict[str, Any]:
    """The event's payload: ids, category, status, routing. No reporter field, ever."""
    return {"report_id": report.pk, "category": report.category.code, "report_status": report.status,
            "due_at": report.due_at.isoformat(), "routing": report.routing}


def write_event(report: Report, producer: str, *, link: bool = True) -> None:
    """Create or update the report's geo-event (same ``source_key``), routed as the report is."""
    event, _ = raise_event(EventDraft(
        kind=EVENT_KIND, category=report.category.code, geom=report.geom, occurred_at=report.reported_at,
        severity=2, title=f"{report.category.name_vi} #{report.pk}", payload=event_payload(report),
        source_feature_id=report.feature_id, layer_slug=reports_layer(report.city).slug,
        source_key=f"report:{report.pk}", producer=producer,
        route=RoutedTo(ward_id=report.ward_id, agency_id=report.agency_id)))
    if report.event_id is None:
        report.event = event
        if link:
            Report.objects.filter(pk=report.pk).update(event=event)


def follow_status(report: Report, actor, actor_label: str, note: str) -> None:
    """Move the geo-event along when the report's status maps to an event status."""
    target = EVENT_STATUS.get(report.status)
    if target is None or report.event_id is None:
        return
    event = report.event
    if event.status == target:
        return
    if target == EventStatus.DISPATCHED and event.status == EventStatus.NEW:
        transition_event(event.pk, EventStatus.ACKNOWLEDGED, actor=actor, actor_label=actor_label, note=note)
    transition_event(event.pk, target, actor=actor, actor_label=actor_label, note=note)
    report.event.refresh_from_db(fields=["status"])
