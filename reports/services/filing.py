# SPDX-License-Identifier: AGPL-3.0-or-later
"""Filing many checked reports in one transaction (group commit).

Why: one report per transaction was ~35 statements and, worse, every
filing upserted the reports layer's row in ``twin_layer_data_version``
(``write_features`` → ``bump_data_version``) and held that lock until
commit, so filings queued behind each other whatever the number of
threads. Here a batch of checked drafts (:class:`Prepared`) is routed and
written with set-based statements: one ``INSERT … FROM unnest`` each
(:func:`~twin.services.sql.insert_statement`) for reports, reporters,
media, steps, features (:func:`~twin.services.features.new_features_statement`),
events, transitions and notifications, and one data-version bump — all
under ids taken beforehand, sent as one statement (:func:`write_batch`).

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
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils.module_loading import import_string

from ingestion.routing import (Candidate, Route, candidates_from, candidates_statement, choose_ward,
                               ward_candidates_many)
from reports.models import (ContactChannel, Notification, Report, ReportCategory, ReportMedia, Reporter,
                            ReportStatus, ReportStep)
from reports.services import media_store, notify, publish
from reports.services.media import CleanMedia
from reports.services.ratelimit import attempt_count
from reports.services.routing import route_report, router
from twin.errors import ImportRejected, TwinError
from twin.models import (AdminArea, AdminLevel, Agency, City, EventStatus, Feature, GeoEvent, GeoEventTransition,
                         Layer)
from twin.services import announce, new_features_statement
from twin.services.features import data_version_bumped, data_version_statement
from twin.services.sql import (Statement, allocate_ids, allocate_statement, columns_statement, execute_as_one,
                               fetch_together, ids_from, insert_statement)

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
    route: Route | None = None  # set by file_batch (one candidates query for the batch's drafts)
    client: str | None = None   # rate-limit key when the writer counts the attempt; in memory only, never stored


class RouteCache:
    """Routing: ``Router``'s own steps, with the per-(ward, category) decision remembered.

    Per point: the ward candidates (:func:`ingestion.routing.ward_candidates_many`,
    one query for a whole batch) and :func:`~ingestion.routing.choose_ward` (the same
    candidates and rule as ``Router.route``, always computed); the ward row and
    the chain's decision (``Router.agencies_for``: ``agency_for`` of every new
    (ward, province, category) of the batch, one or two queries in all) are remembered
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

    def reports_layer(self, city: City) -> Layer:
        """The city's reports layer, remembered like the rows above.

        Why: ``publish.reports_layer`` keeps it on the ``City`` instance, and every
        draft carries its own copy of the city, so the writer looked it up once per
        batch. Called outside the batch's transaction: a layer created on first use
        inside it could roll back and must not be remembered.
        """
        return self.lookup("reports-layer", city.slug, lambda: publish.reports_layer(city))

    def route(self, point: Point, category: str) -> Route:
        return self.route_many([(point, category)])[0]

    def route_many(self, items: list[tuple[Point, str]], found: list[list[Candidate]] | None = None) -> list[Route]:
        """Routes of ``(point, category)`` pairs, in order: one candidates query for all the points.

        ``found``: the points' ward candidates when the caller has read them
        (:func:`candidates_statement`, sent with its other reads).
        """
        rtr = router()
        wards, agencies = self._memory()
        tolerance = rtr.cfg.boundary_tolerance_m
        if found is None:
            found = ward_candidates_many([point for point, _ in items], tolerance)
        chosen = [choose_ward(candidates) for candidates in found]
        missing = {c.area_id for c, _ in chosen if c is not None and c.area_id not in wards}
        if missing:
            wards.update(AdminArea.objects.select_related("parent").in_bulk(missing))
        places = []
        for candidates, (ward_choice, rule) in zip(found, chosen, strict=True):
            ward = wards[ward_choice.area_id] if ward_choice is not None else None
            province = (ward.parent if ward is not None and ward.parent and ward.parent.level == AdminLevel.PROVINCE
                        else None)
            places.append((ward, province))
        todo = {(w.pk, p.pk, cat): (w, p, cat) for (w, p), (_, cat) in zip(places, items, strict=True)
                if p is not None and (w.pk, p.pk, cat) not in agencies}
        agencies.update(zip(todo, rtr.agencies_for(list(todo.values())), strict=True))   # the chain: 1–2 queries
        out: list[Route] = []
        for (point, category), candidates, (_, rule), (ward, province) in zip(items, found, chosen, places,
                                                                              strict=True):
            if province is None:       # no ward, or a ward without a province: the chain's own lookups
                out.append(route_report(point, category))
                continue
            agency, step = agencies[(ward.pk, province.pk, category)]
            out.append(Route(ward=ward, province=province, agency=agency, step=step, rule=rule,
                             candidates=tuple(candidates), tolerance_m=tolerance))
        return out


ROUTES = RouteCache()


def _forget_routes(**_kwargs) -> None:
    ROUTES.clear()


for _model in (Agency, AdminArea, City, ReportCategory, Layer):
    post_save.connect(_forget_routes, sender=_model, dispatch_uid=f"reports-routes-save-{_model.__name__}")
    post_delete.connect(_forget_routes, sender=_model, dispatch_uid=f"reports-routes-delete-{_model.__name__}")
m2m_changed.connect(_forget_routes, sender=Agency.jurisdiction.through, dispatch_uid="reports-routes-m2m")


def _routed(batch: list[Prepared], found: list[list[Candidate]] | None = None) -> list[Prepared | TwinError]:
    """Route the drafts not yet routed (one candidates query for all, unless ``found``: theirs, read already);
    a draft outside the city becomes its error."""
    from reports.services.intake import check_inside

    todo = [i for i, item in enumerate(batch) if item.route is None]
    routes = dict(zip(todo, ROUTES.route_many([(batch[i].point, batch[i].category.route_as) for i in todo], found),
                      strict=True))
    out: list[Prepared | TwinError] = []
    for i, item in enumerate(batch):
        if i in routes:
            try:
                check_inside(item.city, item.point, routes[i])
            except TwinError as exc:
                out.append(exc)
                continue
            item = replace(item, route=routes[i])
        out.append(item)
    return out


def _id_counts(batch: list[Prepared]) -> dict[type, int]:
    return {Report: len(batch), Feature: len(batch), GeoEvent: len(batch),
            ReportMedia: sum(len(item.media) for item in batch)}


def _read_first(batch: list[Prepared], count_attempts: bool
                ) -> tuple[list[TwinError | None], list[list[Candidate]], dict[type, list[int]]]:
    """What the batch needs from the server before its write, in one round trip (:func:`fetch_together`):
    the rate-limit verdicts (when counting), the ward candidates of the unrouted drafts, the new keys.

    Keys and candidates are read for every draft; those of a refused one go unused.
    """
    count = attempt_count([item.client for item in batch]) if count_attempts else None
    unrouted = [item.point for item in batch if item.route is None]
    counts = _id_counts(batch)
    statements = [allocate_statement(counts)]
    if unrouted:
        statements.append(candidates_statement(unrouted, router().cfg.boundary_tolerance_m))
    counting = count is not None and count.statement is not None
    if counting:
        statements.append(count.statement)
    rows = fetch_together(statements)
    found = candidates_from(rows[1], len(unrouted)) if unrouted else []
    limited = count.verdicts(rows[-1]) if counting else [None] * len(batch)
    return limited, found, ids_from(rows[0], counts)


def file_batch(batch: list[Prepared], *, announce_later: bool = False,
               count_attempts: bool = False) -> list[Report | TwinError]:
    """Route (when not yet routed) and store a batch; per draft the stored report or the error that refused it.

    Each stored report carries ``duplicate_ids``: its likely duplicates, found
    just after the write (:func:`duplicates_of`). ``announce_later``: the
    caller announces the new events itself after the commit
    (:func:`announce_filed`, the writer thread: once per batch) instead of
    one ``on_commit`` announcement per event. ``count_attempts``: count each
    draft's ``client`` against the rate limit first (committed on its own, one
    statement for the batch); a draft past the limit gets :class:`RateLimited`.
    The server is asked three times: what is read first (:func:`_read_first`),
    the write (:func:`write_batch`), the duplicates.
    """
    limited, found, ids = _read_first(batch, count_attempts)
    batch = [replace(item, client=None) for item in batch]
    routed = [refused if refused is not None else item
              for item, refused in zip(_routed(batch, found), limited, strict=True)]
    accepted = [item for item in routed if isinstance(item, Prepared)]
    cities = {item.city.pk: item.city for item in accepted}
    layers = {pk: ROUTES.reports_layer(city) for pk, city in cities.items()}
    # Outside a transaction the batch's one statement is a transaction of its own (no BEGIN or COMMIT to wait
    # for); inside a caller's, a savepoint keeps a failed batch from breaking it.
    scope = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with scope:
            reports = iter(write_batch(accepted, announce_each=not announce_later, layers=layers, ids=ids))
    except (DatabaseError, ImportRejected):     # the feature rows are checked before anything is sent
        if len(accepted) <= 1:
            raise
        logger.warning("a batch of %d reports failed; filing them one by one", len(accepted))
        return [item if isinstance(item, TwinError) else _alone(item, announce_later) for item in routed]
    return [item if isinstance(item, TwinError) else next(reports) for item in routed]


def announce_filed(reports: list[Report]) -> None:
    """After the commit: publish the batch's new events live, built from the rows just written.

    Why not ``announce.event_changed`` per report: it reloads each event
    (a query with four joins) to build a message from what this writer
    already holds. With the project's announcer (``ingestion.live.announce``)
    the messages are made from these objects with its own payload and topic
    functions; any other ``LIVE_ANNOUNCER`` gets its ``event_changed`` per event.
    """
    module = getattr(settings, "LIVE_ANNOUNCER", "")
    events = [r.event for r in reports if r.event_id is not None]
    if not module or not events:
        return
    try:
        if module != "ingestion.live.announce":
            for event in events:
                import_string(f"{module}.event_changed")(event.pk, "created")
            return
        from ingestion.live.payloads import dumps, event_city, event_message
        from ingestion.live.publisher import get_publisher
        from ingestion.live.topics import event_topic

        publisher = get_publisher()
        for event in events:
            # The reports layer (and its city) is in hand; event_city would first load the source feature.
            city = event.layer.city.slug if event.layer and event.layer.city else event_city(event)
            publisher.publish(event_topic(publisher.cfg.topic_root, city, event.pk),
                              dumps(event_message(event, "created", city)))
    except Exception:  # like on_commit(robust=True): announcing never fails a committed filing
        logger.exception("announcing %d new report events failed", len(events))


def log_filed(report: Report, media_count: int) -> None:
    """The operators' trace of a stored report: id, category, ward, agency, how many media; no reporter field, ever.

    Batched filings are logged by the writer's announcer thread (see
    ``batcher``), off the request threads and the writer: formatting and
    writing the line was ~0.5 ms of a request's ~3.7 ms of CPU.
    """
    logger.info("report %s filed: category %s, ward %s, agency %s, %d media", report.pk, report.category.code,
                report.ward.code if report.ward else None, report.agency.code if report.agency else None,
                media_count)


def _alone(item: Prepared, announce_later: bool) -> Report | TwinError:
    try:
        return file_batch([item], announce_later=announce_later)[0]
    except (DatabaseError, ImportRejected) as exc:
        logger.error("report not stored: %s", type(exc).__name__)
        return TwinError(f"the report could not be stored ({type(exc).__name__}); nothing was kept")


def write_batch(items: list[Prepared], *, announce_each: bool = True, layers: dict[int, Layer] | None = None,
                ids: dict[type, list[int]] | None = None) -> list[Report]:
    """Everything of the routed drafts, as one statement: stored all or nothing, even outside a transaction.

    ``layers``: city id → reports layer, when the caller has them (else looked up).
    ``announce_each``: each new event is announced after commit on its own
    (else the caller announces the batch, :func:`announce_filed`). ``ids``:
    new keys per model, at least as many as needed, when the caller has them.

    Why the keys first (:func:`~twin.services.sql.allocate_ids`, one query):
    with the ids of the reports, features, events and media known, no insert
    needs another's ``RETURNING``, so the nine inserts and the data-version
    bump go to the server as one statement
    (:func:`~twin.services.sql.execute_as_one`). The writer then waits for
    the server three times a batch (keys, the statement, the duplicates)
    instead of ~17, each of which cost 10–20 ms of waiting for a core and the
    GIL under load; and outside a transaction the statement commits itself
    (no BEGIN, no COMMIT).
    """
    if not items:
        return []
    layers = dict(layers or {})
    for item in items:
        if item.city.pk not in layers:
            layers[item.city.pk] = publish.reports_layer(item.city)
    ids = ids or allocate_ids(_id_counts(items))
    reports = [_report(item, item.route, report_id, feature_id, event_id) for item, report_id, feature_id, event_id
               in zip(items, ids[Report], ids[Feature], ids[GeoEvent])]          # (unused keys are left over)
    media_ids = iter(ids[ReportMedia])
    media = [(next(media_ids), r.pk, m) for r, i in zip(reports, items, strict=True) for m in i.media]
    photos: dict[int, list[int]] = {}
    for media_id, report_id, m in media:
        if m.kind == "photo":
            photos.setdefault(report_id, []).append(media_id)
    layer_ids = sorted({layers[r.city_id].pk for r in reports})
    execute_as_one([
        insert_statement(reports, with_ids=True),
        _reporters(reports, items),
        _media_rows(media),
        _steps(reports, items),
        *_features_and_events(reports, photos, [f"reports:{i.actor_label}" for i in items], layers),
        _notifications(reports, items),
        data_version_statement(layer_ids),
    ])
    for layer_id in layer_ids:
        data_version_bumped(layer_id)
    nearby = duplicates_of(reports)
    for r in reports:
        r.duplicate_ids = nearby.get(r.pk, [])
        if announce_each:
            announce.event_changed(r.event_id, "created")
    return reports


# Open reports of the same category within the duplicate radius of each new report, nearest first
# (the query of intake.find_duplicates, for a whole batch; the geography GiST index serves both).
_BATCH_DUPLICATES_SQL = """
SELECT r.id, d.id
  FROM reports_report r
 CROSS JOIN LATERAL (
       SELECT o.id FROM reports_report o
        WHERE o.category_id = r.category_id AND o.status = ANY(%s) AND o.id <> r.id
          AND ST_DWithin(o.geom::geography, r.geom::geography, %s)
        ORDER BY ST_Distance(o.geom::geography, r.geom::geography), o.id
        LIMIT 10) AS d
 WHERE r.id = ANY(%s)
"""


def duplicates_of(reports: list[Report]) -> dict[int, list[int]]:
    """Report id → ids of its likely duplicates (offered to the citizen), with one query for the batch.

    Run inside the batch's transaction, so reports of the same batch see each other.
    """
    from reports.models import OPEN_STATUSES
    from reports.services.intake import DUPLICATE_RADIUS_M

    out: dict[int, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_DUPLICATES_SQL, [sorted(OPEN_STATUSES), DUPLICATE_RADIUS_M, [r.pk for r in reports]])
        for report_id, duplicate_id in cursor.fetchall():
            out.setdefault(report_id, []).append(duplicate_id)
    return out


def _report(item: Prepared, route: Route, report_id: int, feature_id: int, event_id: int) -> Report:
    return Report(pk=report_id, city=item.city, category=item.category, geom=item.point,
                  description=item.description, address=item.address, channel=item.channel,
                  status=ReportStatus.RECEIVED, ward=route.ward, agency=route.agency, routing=route.as_payload(),
                  reported_at=item.reported_at, due_at=item.reported_at + timedelta(hours=item.category.deadline_hours),
                  feature_id=feature_id, event_id=event_id)


def _media_rows(media: list[tuple[int, int, CleanMedia]]) -> Statement | None:
    """The rows naming each photo's or video's file (its SHA-256; the bytes are files by now), under their keys."""
    return columns_statement(ReportMedia, {
        "id": [media_id for media_id, _, _ in media], "report_id": [report_id for _, report_id, _ in media],
        "kind": [m.kind for _, _, m in media], "stage": ["intake"] * len(media),
        "content_type": [m.content_type for _, _, m in media],
        "sha256": [m.digest or media_store.store(m.data) for _, _, m in media],
        "size": [len(m.data) for _, _, m in media], "width": [m.width for _, _, m in media],
        "height": [m.height for _, _, m in media]})


def _reporters(reports: list[Report], items: list[Prepared]) -> Statement | None:
    """The confidential reporter rows (none for an anonymous report), column-wise: no model instance per row."""
    known = [(r, i.reporter) for r, i in zip(reports, items, strict=True) if not i.reporter.is_anonymous]
    return columns_statement(Reporter, {
        "report_id": [r.pk for r, _ in known], "name": [p.name for _, p in known], "phone": [p.phone for _, p in known],
        "email": [p.email for _, p in known], "device_id": [p.device_id for _, p in known],
        "account_id": [p.account_id for _, p in known], "contact": [p.contact for _, p in known]})


def _steps(reports: list[Report], items: list[Prepared]) -> Statement | None:
    """Each report's first two workflow steps: filed (by whom, through which channel) and routed (where, why)."""
    report_id, action, from_status, to_status, actor_label, at, changes = [], [], [], [], [], [], []
    for report, item in zip(reports, items, strict=True):
        route = item.route
        report_id += [report.pk, report.pk]
        action += ["file", "route"]
        from_status += ["", ReportStatus.RECEIVED]
        to_status += [ReportStatus.RECEIVED, ReportStatus.RECEIVED]
        actor_label += [item.actor_label, "routing"]
        at += [report.reported_at, report.reported_at]
        changes += [{"channel": report.channel},
                    {"agency": route.agency.code if route.agency else None, "step": route.step,
                     "ward": route.ward.code if route.ward else None, "rule": route.rule}]
    return columns_statement(ReportStep, {"report_id": report_id, "action": action, "from_status": from_status,
                                          "to_status": to_status, "actor_label": actor_label, "at": at,
                                          "changes": changes})


def _notifications(reports: list[Report], items: list[Prepared]) -> Statement | None:
    """A first message for each reporter who asked for news, through the contact chosen."""
    wanted = [(r, i.reporter.contact) for r, i in zip(reports, items, strict=True)
              if not i.reporter.is_anonymous and i.reporter.contact != ContactChannel.NONE]
    messages = [notify.message_for(r) for r, _ in wanted]
    return columns_statement(Notification, {
        "report_id": [r.pk for r, _ in wanted], "channel": [channel for _, channel in wanted],
        "status": [r.status for r, _ in wanted], "subject": [subject for subject, _ in messages],
        "body": [body for _, body in messages]})


def _features_and_events(reports: list[Report], photos: dict[int, list[int]], producers: list[str],
                         layers: dict[int, Layer]) -> list[Statement | None]:
    """The inserts of the features (checked by the feature write path, under the ids given) and of the geo-events.

    The events are new (``source_key = report:<new id>``), so they are
    created in bulk with their first transition — what ``raise_event``
    does for a new key, with the route the report already carries — and
    announced after commit like every event.
    """
    by_layer: dict[int, list[Report]] = {}
    for r in reports:
        by_layer.setdefault(layers[r.city_id].pk, []).append(r)
    statements = [new_features_statement(layers[rows[0].city_id],
                                         [publish.feature_row(r, photos.get(r.pk, [])) for r in rows],
                                         [r.feature_id for r in rows])
                  for rows in by_layer.values()]
    events = [GeoEvent(pk=r.event_id, kind=publish.EVENT_KIND, category=r.category.code, severity=2, geom=r.geom,
                       layer=layers[r.city_id], title=f"{r.category.name_vi} #{r.pk}",
                       source_feature_id=r.feature_id, source_key=f"report:{r.pk}", occurred_at=r.reported_at,
                       payload=publish.event_payload(r), status=EventStatus.NEW, ward=r.ward, agency=r.agency)
              for r in reports]
    for r, e in zip(reports, events, strict=True):
        r.event = e
    return [*statements, insert_statement(events, with_ids=True),
            columns_statement(GeoEventTransition, {
                "event_id": [e.pk for e in events], "from_status": [""] * len(events),
                "to_status": [EventStatus.NEW] * len(events), "actor_label": producers})]


__all__ = ["ROUTES", "Prepared", "RouteCache", "announce_filed", "duplicates_of", "file_batch", "log_filed",
           "write_batch"]
