# SPDX-License-Identifier: AGPL-3.0-or-later
"""Filing many checked reports in one transaction (group commit).

Why: one report per transaction was ~35 statements and, worse, every
filing upserted the reports layer's row in ``twin_layer_data_version``
(``write_features`` → ``bump_data_version``) and held that lock until
commit, so filings queued behind each other whatever the number of
threads. Here a batch of checked drafts (:class:`Prepared`) is routed and
written with set-based statements: one ``bulk_create`` each for reports,
reporters, media, steps, events, transitions and notifications, one
``write_features`` call (one data-version bump) for all the features.

Every report is still checked on its own: a draft whose place is outside
the city is refused with its reason and the others are stored. When the
batch transaction fails as a whole (a database error), nothing of it is
kept and each draft is retried alone, so one bad row cannot sink its
neighbours.
"""
from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import psycopg
from django.contrib.gis.geos import Point
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from ingestion.routing import Route, choose_ward, ward_candidates
from reports.models import (ContactChannel, Notification, Report, ReportCategory, ReportMedia, Reporter,
                            ReportStatus, ReportStep)
from reports.services import notify, publish
from reports.services.media import CleanMedia
from reports.services.routing import route_report, router
from twin.errors import TwinError
from twin.models import AdminArea, AdminLevel, Agency, City, EventStatus, GeoEvent, GeoEventTransition, Layer
from twin.services import announce, write_features

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A draft that passed every check that needs no routing: clean text, clean media, a point."""

    city: City
    category: ReportCategory
    point: Point
    description: str
    address: str
    channel: str
    reporter: object            # intake.ReporterInfo (cleaned); confidential
    media: tuple[CleanMedia, ...]
    reported_at: datetime
    actor_label: str
    route: Route | None = None  # set by route_and_check (in the caller's thread, or by file_batch)


class RouteCache:
    """Routing: ``Router``'s own steps, with the per-(ward, category) decision remembered.

    Per point: :func:`ingestion.routing.ward_candidates` and
    :func:`~ingestion.routing.choose_ward` (the same candidates and rule as
    ``Router.route``, always computed); the ward row and ``Router.agency_for(ward,
    province, category)`` — the chain's 1–6 agency queries — are remembered
    per (ward, province, category) for ``ttl_s`` seconds. Any change to an
    agency, its jurisdiction or an area in this process, or :func:`reset_router`,
    forgets them at once (signals below); a change made by another process
    is seen after at most ``ttl_s``. Points with no ward (or a ward without a
    province) take ``Router.route`` itself. The equality with ``Router.route``
    is proven point by point in tests/reports/test_batch.py.
    """

    def __init__(self, ttl_s: float = 60.0) -> None:
        self.ttl_s = ttl_s
        self.lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.born = time.monotonic()
            self.wards: dict[int, AdminArea] = {}
            self.agencies: dict[tuple[int, int, str], tuple] = {}
            self.lookups: dict[tuple[str, str], object] = {}

    def _memory(self) -> tuple[dict, dict]:
        """The remembered rows, or throw-away dicts inside a transaction (its reads may roll back)."""
        if connection.in_atomic_block:
            return {}, {}
        if time.monotonic() - self.born > self.ttl_s:
            self.clear()
        return self.wards, self.agencies

    def lookup(self, kind: str, key: str, load):
        """A category or city row by code, remembered like the routing decisions (a copy is handed out)."""
        if connection.in_atomic_block:
            return load()
        if time.monotonic() - self.born > self.ttl_s:
            self.clear()
        found = self.lookups.get((kind, key))
        if found is None:
            found = load()
            if found is None:
                return None
            self.lookups[(kind, key)] = found
        return copy.copy(found)

    def route(self, point: Point, category: str) -> Route:
        rtr = router()
        wards, agencies = self._memory()
        candidates = ward_candidates(point, rtr.cfg.boundary_tolerance_m)
        chosen, rule = choose_ward(candidates)
        if chosen is None:
            return route_report(point, category)
        ward = wards.get(chosen.area_id)
        if ward is None:
            ward = wards[chosen.area_id] = AdminArea.objects.select_related("parent").get(pk=chosen.area_id)
        province = ward.parent if ward.parent and ward.parent.level == AdminLevel.PROVINCE else None
        if province is None:
            return route_report(point, category)
        key = (ward.pk, province.pk, category)
        decision = agencies.get(key)
        if decision is None:
            decision = agencies[key] = rtr.agency_for(ward, province, category)
        agency, step = decision
        return Route(ward=ward, province=province, agency=agency, step=step, rule=rule,
                     candidates=tuple(candidates), tolerance_m=rtr.cfg.boundary_tolerance_m)


ROUTES = RouteCache()


def _forget_routes(**_kwargs) -> None:
    ROUTES.clear()


for _model in (Agency, AdminArea, City, ReportCategory, Layer):
    post_save.connect(_forget_routes, sender=_model, dispatch_uid=f"reports-routes-save-{_model.__name__}")
    post_delete.connect(_forget_routes, sender=_model, dispatch_uid=f"reports-routes-delete-{_model.__name__}")
m2m_changed.connect(_forget_routes, sender=Agency.jurisdiction.through, dispatch_uid="reports-routes-m2m")


def route_and_check(item: Prepared) -> Route:
    """Route a draft; raise :class:`OutsideCity` (400) for a place outside the city."""
    from reports.services.intake import check_inside

    route = ROUTES.route(item.point, item.category.route_as)
    check_inside(item.city, item.point, route)
    return route


def _routed(batch: list[Prepared]) -> list[Prepared | TwinError]:
    out: list[Prepared | TwinError] = []
    for item in batch:
        if item.route is not None:
            out.append(item)
            continue
        try:
            out.append(replace(item, route=route_and_check(item)))
        except TwinError as exc:
            out.append(exc)
    return out


def file_batch(batch: list[Prepared], *, announce_later: bool = False) -> list[Report | TwinError]:
    """Route (when not yet routed) and store a batch; per draft the stored report or the error that refused it.

    ``announce_later``: the caller announces each new event itself after the
    commit (:func:`announce_filed`), so the writer thread does not publish them one by one.
    """
    routed = _routed(batch)
    accepted = [item for item in routed if isinstance(item, Prepared)]
    try:
        with transaction.atomic():
            reports = iter(write_batch(accepted, announce=not announce_later))
    except DatabaseError:
        if len(accepted) <= 1:
            raise
        logger.warning("a batch of %d reports failed; filing them one by one", len(accepted))
        return [item if isinstance(item, TwinError) else _alone(item, announce_later) for item in routed]
    return [item if isinstance(item, TwinError) else next(reports) for item in routed]


def announce_filed(report: Report) -> None:
    """After the commit: publish the new event live (``announce`` runs at once outside a transaction)."""
    announce.event_changed(report.event_id, "created")


def _alone(item: Prepared, announce_later: bool) -> Report | TwinError:
    try:
        return file_batch([item], announce_later=announce_later)[0]
    except DatabaseError as exc:
        logger.error("report not stored: %s", type(exc).__name__)
        return TwinError(f"the report could not be stored ({type(exc).__name__}); nothing was kept")


def write_batch(items: list[Prepared], *, announce: bool = True) -> list[Report]:
    """Everything of the routed drafts, set-based; call inside a transaction."""
    if not items:
        return []
    accepted = [(item, item.route) for item in items]
    reports = Report.objects.bulk_create([_report(item, route) for item, route in accepted])
    Reporter.objects.bulk_create([
        Reporter(report=r, name=i.reporter.name, phone=i.reporter.phone, email=i.reporter.email,
                 device_id=i.reporter.device_id, account_id=i.reporter.account_id, contact=i.reporter.contact)
        for r, (i, _) in zip(reports, accepted, strict=True) if not i.reporter.is_anonymous])
    media = insert_media([
        ReportMedia(report=r, kind=m.kind, stage="intake", content_type=m.content_type, data=m.data,
                    size=len(m.data), width=m.width, height=m.height)
        for r, (i, _) in zip(reports, accepted, strict=True) for m in i.media])
    photos: dict[int, list[int]] = {}
    for m in media:
        if m.kind == "photo":
            photos.setdefault(m.report_id, []).append(m.pk)
    ReportStep.objects.bulk_create([s for r, (i, route) in zip(reports, accepted, strict=True)
                                    for s in _steps(r, i.actor_label, route)])
    _features_and_events(reports, photos, [f"reports:{i.actor_label}" for i, _ in accepted], announce)
    Notification.objects.bulk_create([_notification(r, i) for r, (i, _) in zip(reports, accepted, strict=True)
                                      if not i.reporter.is_anonymous and i.reporter.contact != ContactChannel.NONE])
    return reports


_MEDIA_COLUMNS = ("report", "kind", "stage", "content_type", "data", "size", "width", "height", "created_at")


def insert_media(rows: list[ReportMedia]) -> list[ReportMedia]:
    """Insert media rows with the bytes sent as binary parameters; sets each row's ``pk``.

    Why not ``bulk_create``: Django's PostgreSQL backend binds parameters on
    the client, so a 233 KiB photo travelled as ~470 KiB of escaped SQL text
    that the server parsed — 60 % of a batch's time (17 ms per photo). A
    server-side-binding psycopg cursor on the same connection (same
    transaction) sends the bytes as they are, all rows in one pipeline.
    """
    if not rows:
        return rows
    connection.ensure_connection()
    now = timezone.now()
    meta = ReportMedia._meta
    columns = ", ".join(connection.ops.quote_name(meta.get_field(f).column) for f in _MEDIA_COLUMNS)
    sql = (f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) "
           f"VALUES ({', '.join(['%s'] * len(_MEDIA_COLUMNS))}) RETURNING id")
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:  # Django's error types
        cursor.executemany(sql, [(m.report_id, m.kind, m.stage, m.content_type, bytes(m.data), m.size, m.width,
                                  m.height, now) for m in rows], returning=True)
        for row in rows:
            row.pk, row.created_at = cursor.fetchone()[0], now
            row._state.adding, row._state.db = False, "default"
            cursor.nextset()
    return rows


def _report(item: Prepared, route: Route) -> Report:
    return Report(city=item.city, category=item.category, geom=item.point, description=item.description,
                  address=item.address, channel=item.channel, status=ReportStatus.RECEIVED, ward=route.ward,
                  agency=route.agency, routing=route.as_payload(), reported_at=item.reported_at,
                  due_at=item.reported_at + timedelta(hours=item.category.deadline_hours))


def _steps(report: Report, actor_label: str, route: Route) -> list[ReportStep]:
    at = report.reported_at
    return [
        ReportStep(report=report, action="file", from_status="", to_status=ReportStatus.RECEIVED,
                   actor_label=actor_label, at=at, changes={"channel": report.channel}),
        ReportStep(report=report, action="route", from_status=ReportStatus.RECEIVED,
                   to_status=ReportStatus.RECEIVED, actor_label="routing", at=at,
                   changes={"agency": route.agency.code if route.agency else None, "step": route.step,
                            "ward": route.ward.code if route.ward else None, "rule": route.rule}),
    ]


def _features_and_events(reports: list[Report], photos: dict[int, list[int]], producers: list[str],
                         announce_events: bool) -> None:
    """The features through the single write path (one call, one version bump), then the geo-events.

    The events are new (``source_key = report:<new id>``), so they are
    created in bulk with their first transition — what ``raise_event``
    does for a new key, with the route the report already carries — and
    announced after commit like every event.
    """
    by_layer: dict[int, list[Report]] = {}
    layers: dict[int, Layer] = {}
    of_city: dict[int, Layer] = {}
    for r in reports:
        if r.city_id not in of_city:
            of_city[r.city_id] = publish.reports_layer(r.city)
        layer = of_city[r.city_id]
        layers[layer.pk] = layer
        by_layer.setdefault(layer.pk, []).append(r)
    for layer_id, rows in by_layer.items():
        layer = layers[layer_id]
        write_features(layer, [publish.feature_row(r, photos.get(r.pk, [])) for r in rows], on_invalid="reject")
        ids = dict(layer.features.filter(external_id__in=[str(r.pk) for r in rows]).values_list("external_id", "id"))
        for r in rows:
            r.feature_id = ids[str(r.pk)]
    events = GeoEvent.objects.bulk_create([
        GeoEvent(kind=publish.EVENT_KIND, category=r.category.code, severity=2, geom=r.geom,
                 layer=of_city[r.city_id], title=f"{r.category.name_vi} #{r.pk}",
                 source_feature_id=r.feature_id, source_key=f"report:{r.pk}", occurred_at=r.reported_at,
                 payload=publish.event_payload(r), status=EventStatus.NEW, ward=r.ward, agency=r.agency)
        for r in reports])
    GeoEventTransition.objects.bulk_create([
        GeoEventTransition(event=e, from_status="", to_status=EventStatus.NEW, actor_label=producer)
        for e, producer in zip(events, producers, strict=True)])
    for r, e in zip(reports, events, strict=True):
        r.event = e
        if announce_events:
            announce.event_changed(e.pk, "created")
    Report.objects.bulk_update(reports, ["feature", "event"])


def _notification(report: Report, item: Prepared) -> Notification:
    subject, body = notify.message_for(report)
    return Notification(report=report, channel=item.reporter.contact, status=report.status, subject=subject,
                        body=body)


__all__ = ["ROUTES", "Prepared", "RouteCache", "announce_filed", "file_batch", "route_and_check", "write_batch"]
