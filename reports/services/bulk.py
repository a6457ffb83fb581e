# SPDX-License-Identifier: AGPL-3.0-or-later
"""Loading a real report stream (the San Francisco 311 sample) onto the city's wards.

Each SF neighbourhood goes to one ward of the city (a stable hash of its
name) and each case to a seeded random point inside that ward (seed = the
case id): the same file always gives the same places. Categories are
mapped by ``fixtures/reports/sf311_mapping.toml``; times, status and closing
times are the real ones. Rows are written in bulk (one transaction: the
reports, their features through ``write_features``, their geo-events and
steps) — this is a back-fill, so nothing is announced live and nobody is
notified.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import random
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import shapely
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import transaction

from reports.models import Report, ReportCategory, ReportStatus, ReportStep
from reports.services import publish
from reports.services.intake import city_for
from reports.services.routing import router
from twin.models import AdminArea, AdminLevel, EventStatus, Feature, GeoEvent, GeoEventTransition
from twin.services import write_features
from twin.services.features import bump_layer_versions

logger = logging.getLogger(__name__)

FIXTURES = Path(settings.BASE_DIR) / "fixtures" / "reports"
DEFAULT_FILE = FIXTURES / "sf311_cases_sample.csv"
SOURCE = "sf311"
CREDIT = ("Sample reports: San Francisco 311 Cases, DataSF (ODC-PDDL 1.0), re-placed onto this city's wards "
          "with mapped categories")
EVENT_STATUS = {ReportStatus.RECEIVED: EventStatus.NEW, ReportStatus.ASSIGNED: EventStatus.DISPATCHED,
                ReportStatus.RESOLVED: EventStatus.RESOLVED}


@dataclass(slots=True)
class LoadResult:
    read: int = 0
    loaded: int = 0
    skipped: int = 0
    deleted: int = 0


def delete_reports(ids: list[int]) -> int:
    """Delete reports with their features and geo-events (re-loads, test clean-up)."""
    feature_ids = list(Report.objects.filter(pk__in=ids).exclude(feature=None).values_list("feature_id", flat=True))
    with transaction.atomic():
        _, per_model = Report.objects.filter(pk__in=ids).delete()
        count = per_model.get("reports.Report", 0)
        GeoEvent.objects.filter(source_key__in=[f"report:{i}" for i in ids] + [f"report-overdue:{i}" for i in ids]
                                ).delete()
        features = Feature.objects.filter(pk__in=feature_ids)
        layers = set(features.values_list("layer_id", flat=True))
        features.delete()
        if layers:
            bump_layer_versions(layers)
    return count


def _parse_time(raw: str, tz: ZoneInfo) -> datetime | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    for fmt in ("%Y-%m-%d %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    return None


def _point_in(geom: shapely.Geometry, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(10_000):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if geom.contains(shapely.Point(x, y)):
            return x, y
    p = geom.representative_point()
    return p.x, p.y


def _ward_for(name: str, wards: list[AdminArea]) -> AdminArea:
    digest = hashlib.sha1((name or "?").encode()).hexdigest()
    return wards[int(digest, 16) % len(wards)]


def _plain(text: str) -> str:
    """Imported text: keep it plain (no markup characters) rather than refuse the row."""
    return " ".join((text or "").replace("<", " ").replace(">", " ").split())[:5000]


def load_sf311(path: Path | str | None = None, *, city_slug: str | None = None, limit: int | None = None,
               replace: bool = False) -> LoadResult:
    path = Path(path) if path else DEFAULT_FILE
    mapping = tomllib.loads((FIXTURES / "sf311_mapping.toml").read_text(encoding="utf-8"))
    city = city_for(city_slug)
    wards = list(AdminArea.objects.filter(level=AdminLevel.WARD, parent=city.province).order_by("code"))
    if not wards:
        raise ValueError(f"{city.slug} has no wards to place reports on")
    shapes = {w.pk: shapely.from_wkb(bytes(w.geom.wkb)) for w in wards}
    for geom in shapes.values():
        shapely.prepare(geom)
    categories = {c.code: c for c in ReportCategory.objects.all()}
    tz = ZoneInfo(settings.TIME_ZONE)
    result = LoadResult()
    if replace:
        result.deleted = delete_reports(list(Report.objects.filter(source_ref__startswith=f"{SOURCE}:")
                                             .values_list("pk", flat=True)))
    existing = set(Report.objects.filter(source_ref__startswith=f"{SOURCE}:").values_list("source_ref", flat=True))
    routes: dict[tuple[int, str], tuple] = {}
    reports: list[Report] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if limit is not None and result.read >= limit:
                break
            result.read += 1
            ref = f"{SOURCE}:{row.get('CaseID', '').strip()}"
            opened = _parse_time(row.get("Opened", ""), tz)
            if ref in existing or opened is None or not row.get("CaseID", "").strip().isdigit():
                result.skipped += 1
                continue
            category = categories[mapping["categories"].get(row.get("Category", ""), "other")]
            ward = _ward_for(row.get("Neighborhood", ""), wards)
            key = (ward.pk, category.route_as)
            if key not in routes:
                routes[key] = router().agency_for(ward, city.province, category.route_as)
            agency, step = routes[key]
            reports.append(_report(row, ref, city, category, ward, agency, step, opened, tz,
                                   _point_in(shapes[ward.pk], int(row["CaseID"])), mapping))
    _write(reports, city)
    result.loaded = len(reports)
    logger.info("loaded %d reports from %s (%d skipped, %d replaced)", result.loaded, path.name, result.skipped,
                result.deleted)
    return result


def _report(row, ref, city, category, ward, agency, step, opened, tz, lonlat, mapping) -> Report:
    closed = _parse_time(row.get("Closed", ""), tz)
    is_closed = row.get("Status", "").strip().lower() == "closed" and closed is not None
    status = ReportStatus.RESOLVED if is_closed else (ReportStatus.ASSIGNED if agency else ReportStatus.RECEIVED)
    details = " — ".join(p for p in (row.get("Request.Type", ""), row.get("Request.Details", "")) if p.strip())
    return Report(
        city=city, category=category, geom=Point(*lonlat, srid=4326), description=_plain(details),
        channel=mapping["channels"].get(row.get("Source", ""), "import"), status=status, ward=ward, agency=agency,
        routing={"ward": ward.code, "ward_name": ward.name_vi, "province": city.province.code if city.province else None,
                 "rule": "placed_from_sample", "step": step, "agency": agency.code if agency else None},
        reported_at=opened, due_at=opened + timedelta(hours=category.deadline_hours),
        closed_at=max(closed, opened) if is_closed else None,
        result_text=_plain(row.get("Status.Notes", "")) or "Đã xử lý / Closed" if is_closed else "",
        source_ref=ref)


def _write(reports: list[Report], city) -> None:
    """Reports, features, geo-events and steps in one transaction."""
    if not reports:
        return
    layer = publish.credit_source(publish.reports_layer(city), CREDIT)
    with transaction.atomic():
        Report.objects.bulk_create(reports, batch_size=2000)
        write_features(layer, [publish.feature_row(r, photo_ids=[]) for r in reports], on_invalid="reject")
        features = dict(layer.features.filter(external_id__in=[str(r.pk) for r in reports])
                        .values_list("external_id", "id"))
        events = GeoEvent.objects.bulk_create([
            GeoEvent(kind=publish.EVENT_KIND, category=r.category.code, severity=2, geom=r.geom, layer=layer,
                     title=f"{r.category.name_vi} #{r.pk}", source_feature_id=features[str(r.pk)],
                     source_key=f"report:{r.pk}", occurred_at=r.reported_at, payload=publish.event_payload(r),
                     status=EVENT_STATUS[r.status], ward=r.ward, agency=r.agency) for r in reports], batch_size=2000)
        GeoEventTransition.objects.bulk_create(
            [GeoEventTransition(event=e, from_status="", to_status=EventStatus.NEW, actor_label="import:sf311")
             for e in events] +
            [GeoEventTransition(event=e, from_status=EventStatus.NEW, to_status=e.status, actor_label="import:sf311")
             for e in events if e.status != EventStatus.NEW], batch_size=5000)
        for r, e in zip(reports, events, strict=True):
            r.feature_id, r.event_id = features[str(r.pk)], e.pk
        Report.objects.bulk_update(reports, ["feature", "event"], batch_size=2000)
        ReportStep.objects.bulk_create(_steps(reports), batch_size=5000)


def _steps(reports: list[Report]) -> list[ReportStep]:
    steps = []
    for r in reports:
        steps.append(ReportStep(report=r, action="file", to_status=ReportStatus.RECEIVED, actor_label="import:sf311",
                                at=r.reported_at, changes={"channel": r.channel}))
        steps.append(ReportStep(report=r, action="route", from_status=ReportStatus.RECEIVED,
                                to_status=ReportStatus.RECEIVED, actor_label="routing", at=r.reported_at,
                                changes={"agency": r.agency.code if r.agency else None, "step": r.routing["step"]}))
        if r.status != ReportStatus.RECEIVED:
            steps.append(ReportStep(report=r, action="assign", from_status=ReportStatus.RECEIVED,
                                    to_status=ReportStatus.ASSIGNED, actor_label="import:sf311", at=r.reported_at))
        if r.status == ReportStatus.RESOLVED:
            steps.append(ReportStep(report=r, action="resolve", from_status=ReportStatus.ASSIGNED,
                                    to_status=ReportStatus.RESOLVED, actor_label="import:sf311", at=r.closed_at,
                                    note=r.result_text))
    return steps
