# SPDX-License-Identifier: AGPL-3.0-or-later
"""KPIs of report handling, by ward, agency, category and month.

Every report falls in exactly one of four outcomes, so the figures add up
by construction (and a test proves it on real data):

``on_time``      closed (resolved or rejected) by its deadline
``late``         closed after its deadline
``overdue``      still open and past its deadline
``pending``      still open, deadline not reached

``received = on_time + late + overdue + pending`` and ``processed = on_time + late``.
Average handling time is over processed reports, in hours.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from reports.models import CLOSED_STATUSES, Report, ReportStatus

DIMENSIONS = {
    "ward": ("ward__code", "ward__name_vi"),
    "agency": ("agency__code", "agency__name_vi"),
    "category": ("category__code", "category__name_vi"),
    "month": ("month", None),
}


@dataclass(frozen=True, slots=True)
class KpiQuery:
    start: datetime | None = None
    end: datetime | None = None
    city_slug: str | None = None


def _measures(now: datetime) -> dict:
    closed = Q(status__in=CLOSED_STATUSES)
    return {
        "received": Count("id"),
        "processed": Count("id", filter=closed),
        "resolved": Count("id", filter=Q(status=ReportStatus.RESOLVED)),
        "rejected": Count("id", filter=Q(status=ReportStatus.REJECTED)),
        "on_time": Count("id", filter=closed & Q(closed_at__lte=F("due_at"))),
        "late": Count("id", filter=closed & Q(closed_at__gt=F("due_at"))),
        "overdue": Count("id", filter=~closed & Q(due_at__lt=now)),
        "pending": Count("id", filter=~closed & Q(due_at__gte=now)),
        "avg_handling": Avg(ExpressionWrapper(F("closed_at") - F("reported_at"), output_field=DurationField()),
                            filter=closed),
    }


def _clean(row: dict) -> dict:
    avg = row.pop("avg_handling")
    row["avg_handling_hours"] = round(avg.total_seconds() / 3600, 2) if avg is not None else None
    row["on_time_rate"] = round(row["on_time"] / row["processed"], 4) if row["processed"] else None
    return row


def compute(query: KpiQuery) -> dict:
    """Totals and one table per dimension, at one instant (``now``) so the groups agree."""
    now = timezone.now()
    base = Report.objects.all()
    if query.city_slug:
        base = base.filter(city__slug=query.city_slug)
    if query.start:
        base = base.filter(reported_at__gte=query.start)
    if query.end:
        base = base.filter(reported_at__lt=query.end)
    measures = _measures(now)
    result = {"as_of": now.isoformat(), "totals": _clean(dict(base.aggregate(**measures)))}
    tz = ZoneInfo(settings.TIME_ZONE)
    for name, (key, label) in DIMENSIONS.items():
        query_set = base.annotate(month=TruncMonth("reported_at", tzinfo=tz)) if name == "month" else base
        fields = [key] + ([label] if label else [])
        rows = query_set.values(*fields).annotate(**measures).order_by(key)
        table = []
        for row in rows:
            item = {"key": row.pop(key), "name": row.pop(label) if label else None}
            if name == "month" and item["key"] is not None:
                item["key"] = item["key"].strftime("%Y-%m")
            table.append({**item, **_clean(row)})
        result[f"by_{name}"] = table
    return result
