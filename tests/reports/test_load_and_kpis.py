# SPDX-License-Identifier: AGPL-3.0-or-later
"""The real 311 sample placed onto Huế wards, and KPIs that add up on it."""
from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command

from reports.models import Report, ReportStatus
from reports.services import kpis
from reports.services.bulk import load_sf311
from twin.models import Feature, GeoEvent

pytestmark = pytest.mark.django_db

MEASURES = ("received", "processed", "resolved", "rejected", "on_time", "late", "overdue", "pending")


@pytest.fixture
def sample(hue):
    result = load_sf311(limit=600)
    assert result.loaded == 600
    return result


def test_sample_is_placed_inside_huế_wards_deterministically_with_features_and_events(sample, hue):
    reports = Report.objects.filter(source_ref__startswith="sf311:").select_related("ward")
    assert reports.count() == 600
    for report in reports[:100]:
        assert report.ward.geom.covers(report.geom), report.source_ref
        assert report.ward.parent_id == hue.province_id
    assert Feature.objects.filter(layer__slug="hue-reports", pk__in=reports.values("feature_id")).count() == 600
    from twin.models import Layer

    assert "DataSF (ODC-PDDL 1.0)" in Layer.objects.get(slug="hue-reports").attribution
    assert GeoEvent.objects.filter(kind="citizen_report", pk__in=reports.values("event_id")).count() == 600
    first = reports.order_by("source_ref").first()
    again = load_sf311(limit=600)
    assert again.loaded == 0 and again.skipped == 600          # re-running skips what is there
    replaced = load_sf311(limit=600, replace=True)
    assert replaced.deleted == 600 and replaced.loaded == 600
    same = Report.objects.get(source_ref=first.source_ref)
    assert same.geom.equals_exact(first.geom, 1e-12) and same.ward_id == first.ward_id   # same place every time
    categories = Counter(Report.objects.values_list("category__code", flat=True))
    assert categories["littering"] > 0 and categories["road_damage"] > 0


def test_kpis_add_up_by_ward_agency_category_and_month(sample):
    data = kpis.compute(kpis.KpiQuery())
    totals = data["totals"]
    assert totals["received"] == Report.objects.count()
    assert totals["received"] == totals["on_time"] + totals["late"] + totals["overdue"] + totals["pending"]
    assert totals["processed"] == totals["on_time"] + totals["late"] == totals["resolved"] + totals["rejected"]
    assert totals["processed"] == Report.objects.filter(status__in=[ReportStatus.RESOLVED,
                                                                    ReportStatus.REJECTED]).count()
    for dimension in ("by_ward", "by_agency", "by_category", "by_month"):
        for measure in MEASURES:
            assert sum(row[measure] for row in data[dimension]) == totals[measure], (dimension, measure)
        for row in data[dimension]:
            assert row["received"] == row["on_time"] + row["late"] + row["overdue"] + row["pending"]
    # The average handling time, recomputed in Python from the rows.
    closed = [(r.closed_at - r.reported_at).total_seconds() / 3600
              for r in Report.objects.exclude(closed_at=None)]
    assert totals["avg_handling_hours"] == pytest.approx(sum(closed) / len(closed), abs=0.01)
    months = [row["key"] for row in data["by_month"]]
    assert months == sorted(months) and all(len(m) == 7 for m in months)


def test_load_reports_command(hue, capsys):
    call_command("load_reports", limit=50)
    assert "50 reports loaded" in capsys.readouterr().out
