# SPDX-License-Identifier: AGPL-3.0-or-later
"""The one public view of a report, used by Open311, the feed, the results page and exports.

It reads :class:`~reports.models.Report` columns only; the reporter is
never loaded here (tests assert it for every public output).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from reports.models import CLOSED_STATUSES, Report, ReportCategory, ReportStatus
from reports.services.publish import media_url
from twin.errors import InvalidInput
from twin.models import AdminArea

MAX_PAGE_SIZE = 1000


def public_queryset() -> QuerySet[Report]:
    return (Report.objects.select_related("category", "ward", "agency")
            .defer("routing").prefetch_related("media"))


def public_report(report: Report, absolute=lambda url: url) -> dict[str, Any]:
    photos = [absolute(media_url(m.pk)) for m in report.media.all() if m.kind == "photo"]
    closed = report.status in CLOSED_STATUSES
    return {
        "id": report.pk,
        "category": report.category.code, "category_name": report.category.name_vi,
        "category_name_en": report.category.name_en,
        "status": report.status, "status_name": ReportStatus(report.status).label, "description": report.description, "address": report.address,
        "lon": round(report.geom.x, 6), "lat": round(report.geom.y, 6),
        "ward": report.ward.code if report.ward else None, "ward_name": report.ward.name_vi if report.ward else None,
        "agency": report.agency.code if report.agency else None,
        "agency_name": report.agency.name_vi if report.agency else None,
        "result": (report.result_text or report.reject_reason) if closed else "",
        "reported_at": report.reported_at.isoformat(), "due_at": report.due_at.isoformat(),
        "closed_at": report.closed_at.isoformat() if report.closed_at else None,
        "updated_at": report.updated_at.isoformat() if report.updated_at else None,
        "overdue": report.overdue_at is not None, "duplicate_of": report.duplicate_of_id,
        "photos": photos,
    }


@dataclass(frozen=True, slots=True)
class ReportSearch:
    """A parsed public search: every parameter checked before any SQL."""

    ward: str | None = None
    category: str | None = None
    status: str | None = None            # open | closed | a report status
    ids: tuple[int, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    page: int = 1
    page_size: int = 50

    def apply(self, query: QuerySet[Report]) -> QuerySet[Report]:
        if self.ward:
            query = query.filter(ward__code=self.ward)
        if self.category:
            query = query.filter(category__code__in=self.category.split(","))
        if self.status == "open":
            query = query.exclude(status__in=CLOSED_STATUSES)
        elif self.status == "closed":
            query = query.filter(status__in=CLOSED_STATUSES)
        elif self.status:
            query = query.filter(status=self.status)
        if self.ids:
            query = query.filter(pk__in=self.ids)
        if self.start:
            query = query.filter(reported_at__gte=self.start)
        if self.end:
            query = query.filter(reported_at__lte=self.end)
        return query

    def page_slice(self, query: QuerySet[Report]) -> list[Report]:
        offset = (self.page - 1) * self.page_size
        return list(query[offset:offset + self.page_size])


def _int(raw: str, name: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, not {raw[:20]!r}") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}")
    return value


def _when(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date-time (e.g. 2025-07-01T00:00:00Z)") from None
    if value.tzinfo is None:
        raise InvalidInput(f"{name} must carry a time zone (Z or +07:00)")
    return value


STATUS_VALUES = frozenset({"open", "closed", "received", "verified", "assigned", "in_progress", "resolved",
                           "rejected"})


def _dates(params, ids: tuple[int, ...], default_window: timedelta | None) -> tuple[datetime | None, datetime | None]:
    """``start_date``/``end_date``, checked; with ``default_window``, a missing start is ``window`` before the end.

    GeoReport v2: a GET of requests without dates returns the last 90 days
    (Open311 passes ``default_window``); a start alone is open-ended; an end
    alone gets the window before it. A search by ``service_request_id`` gets no window.
    """
    start = _when(params["start_date"], "start_date") if params.get("start_date") else None
    end = _when(params["end_date"], "end_date") if params.get("end_date") else None
    if start and end and start > end:
        raise InvalidInput("start_date must not be after end_date")
    if default_window is not None and start is None and not ids:
        start = (end or timezone.now()) - default_window
    return start, end


def parse_search(params, *, default_page_size: int = 50, default_window: timedelta | None = None) -> ReportSearch:
    """Parse query parameters (Open311 names and ours) into a :class:`ReportSearch`.

    ``default_window``: when no ``start_date`` is given (and no ids), only the
    reports of that period before ``end_date`` (or now) are searched.
    """
    ward = (params.get("ward") or "").strip() or None
    if ward and not AdminArea.objects.filter(code=ward).exists():
        raise InvalidInput(f"unknown ward code {ward!r}")
    category = (params.get("service_code") or params.get("category") or "").strip() or None
    if category:
        known = set(ReportCategory.objects.values_list("code", flat=True))
        unknown = [c for c in category.split(",") if c not in known]
        if unknown:
            raise InvalidInput(f"unknown category {unknown[0]!r}")
    status = (params.get("status") or "").strip() or None
    if status and status not in STATUS_VALUES:
        raise InvalidInput(f"status must be one of {', '.join(sorted(STATUS_VALUES))}")
    ids: tuple[int, ...] = ()
    if params.get("service_request_id"):
        ids = tuple(_int(p.strip(), "service_request_id", 1, 2**62) for p in params["service_request_id"].split(",")
                    if p.strip())
    start, end = _dates(params, ids, default_window)
    return ReportSearch(
        ward=ward, category=category, status=status, ids=ids, start=start, end=end,
        page=_int(params["page"], "page", 1, 10**6) if params.get("page") else 1,
        page_size=(_int(params["page_size"], "page_size", 1, MAX_PAGE_SIZE) if params.get("page_size")
                   else default_page_size))
