# SPDX-License-Identifier: AGPL-3.0-or-later
"""The overdue check: open reports past their deadline raise a geo-event, once each."""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from reports.models import OPEN_STATUSES, Report, ReportStep
from reports.services import publish
from twin.services import EventDraft, RoutedTo, raise_event

logger = logging.getLogger(__name__)

EVENT_KIND = "report_overdue"


def check_overdue(now=None, limit: int = 5000) -> int:
    """Flag open reports whose deadline passed; returns how many were flagged now.

    Each gets one ``report_overdue`` event (source key ``report-overdue:<id>``,
    so a re-run never duplicates), routed to the report's agency, a step in
    its history (actor ``overdue-check``) and ``overdue: true`` on its feature.
    """
    now = now or timezone.now()
    ids = list(Report.objects.filter(status__in=OPEN_STATUSES, due_at__lt=now, overdue_at__isnull=True)
               .order_by("due_at", "id").values_list("id", flat=True)[:limit])
    flagged = 0
    for report_id in ids:
        with transaction.atomic():
            report = (Report.objects.select_for_update(of=("self",)).select_related("category", "city", "ward", "agency")
                      .filter(pk=report_id, overdue_at__isnull=True, status__in=OPEN_STATUSES).first())
            if report is None:
                continue
            report.overdue_at = now
            report.save(update_fields=["overdue_at", "updated_at"])
            late_h = round((now - report.due_at).total_seconds() / 3600, 1)
            raise_event(EventDraft(
                kind=EVENT_KIND, category=report.category.code, geom=report.geom, occurred_at=now, severity=3,
                title=f"Quá hạn / Overdue: {report.category.name_vi} #{report.pk}",
                payload={"report_id": report.pk, "report_status": report.status, "due_at": report.due_at.isoformat(),
                         "hours_late": late_h, "agency": report.agency.code if report.agency else None},
                source_feature_id=report.feature_id, source_key=f"report-overdue:{report.pk}",
                producer="overdue-check", route=RoutedTo(ward_id=report.ward_id, agency_id=report.agency_id)))
            ReportStep.objects.create(report=report, action="overdue", from_status=report.status,
                                      to_status=report.status, actor_label="overdue-check", at=now,
                                      changes={"due_at": report.due_at.isoformat(), "hours_late": late_h})
            publish.write_feature(report)
            flagged += 1
    if flagged:
        logger.info("overdue check: %d report(s) flagged", flagged)
    return flagged
