# SPDX-License-Identifier: AGPL-3.0-or-later
"""Public results page and feeds (status, agency, result, map, search by ward and category); KPI API and page."""
from __future__ import annotations

import pytest
from django.urls import reverse

from reports.services import workflow
from reports.services.intake import ReportDraft, file_report
from tests.reports.conftest import inside, make_user
from twin.models import AdminArea, AdminLevel
from twin.roles import Role
from twin.services import create_api_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_wards(hue):
    a, b = AdminArea.objects.filter(level=AdminLevel.WARD).order_by("code")[:2]
    operator = make_user(Role.OPERATOR)
    reports = []
    for area, category in ((a, "littering"), (b, "lighting")):
        lon, lat = inside(area)
        reports.append(file_report(ReportDraft(category=category, lon=lon, lat=lat, description=f"ở {area.name_vi}"))
                       .report)
    workflow.verify(reports[0].pk, workflow.Actor(user=operator))
    workflow.assign(reports[0].pk, workflow.Actor(user=operator))
    workflow.resolve(reports[0].pk, workflow.Actor(user=operator), "Đã thu gom 2 tấn rác")
    return a, b, reports


def test_public_page_shows_status_agency_result_and_a_map(client, two_wards):
    a, b, (done, _) = two_wards
    page = client.get(reverse("reports:public"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Đã thu gom 2 tấn rác" in html and done.agency.name_vi in html
    assert 'id="map"' in html and "/reports/feed.geojson" in html and "/static/map_ui/vendor/ol/ol.js" in html
    detail = client.get(reverse("reports:public-detail", args=[done.pk])).content.decode()
    assert "Đã thu gom 2 tấn rác" in detail and "Đã xử lý xong" in detail


def test_search_by_ward_and_category(client, two_wards):
    a, b, (first, second) = two_wards
    by_ward = client.get(reverse("reports:feed"), {"ward": b.code}).json()
    assert [f["id"] for f in by_ward["features"]] == [second.pk]
    by_category = client.get(reverse("reports:feed"), {"category": "littering"}).json()
    assert {f["id"] for f in by_category["features"]} == {first.pk}
    feature = by_category["features"][0]
    assert feature["properties"]["status"] == "resolved" and feature["properties"]["result"] == "Đã thu gom 2 tấn rác"
    page = client.get(reverse("reports:public"), {"ward": a.code, "category": "littering"}).content.decode()
    assert f"/reports/{first.pk}/" in page and f"/reports/{second.pk}/" not in page
    closed = client.get(reverse("reports:feed"), {"status": "closed"}).json()
    assert {f["id"] for f in closed["features"]} == {first.pk}
    atom = client.get(reverse("reports:feed-atom"), {"category": "littering"})
    assert atom["Content-Type"].startswith("application/atom+xml") and f"#{first.pk}" in atom.content.decode()


@pytest.mark.parametrize("params", [{"ward": "00000"}, {"category": "nope"}, {"status": "x"}, {"page": "0"},
                                    {"page_size": "100000"}])
def test_bad_search_parameters_are_400(client, hue, params):
    assert client.get(reverse("reports:feed"), params).status_code == 400
    assert client.get(reverse("reports:public"), params).status_code == 400


def test_duplicates_endpoint_offers_open_reports_nearby(client, two_wards):
    a, _, (first, second) = two_wards
    lon, lat = inside(AdminArea.objects.get(pk=second.ward_id))
    found = client.get(reverse("reports:duplicates-api"), {"category": "lighting", "lon": lon, "lat": lat}).json()
    assert [d["id"] for d in found["duplicates"]] == [second.pk]
    assert client.get(reverse("reports:duplicates-api"), {"category": "lighting"}).status_code == 400


def test_kpis_api_and_page_need_the_read_kpis_role(client, two_wards):
    assert client.get(reverse("reports:kpi-api")).status_code == 401
    operator_token = create_api_token(make_user(Role.OPERATOR), "t")[1]
    assert client.get(reverse("reports:kpi-api"), HTTP_AUTHORIZATION=f"Bearer {operator_token}").status_code == 403
    leader = make_user(Role.LEADER)
    token = create_api_token(leader, "t")[1]
    data = client.get(reverse("reports:kpi-api"), HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert data["totals"]["received"] == 2 and data["totals"]["processed"] == 1 and data["totals"]["on_time"] == 1
    assert {row["key"] for row in data["by_category"]} == {"littering", "lighting"}
    assert client.get(reverse("reports:kpi-api"), {"start_date": "bad"},
                      HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 400
    client.force_login(leader)
    page = client.get(reverse("reports:kpis"))
    assert page.status_code == 200 and "Tỉ lệ đúng hạn" in page.content.decode()
