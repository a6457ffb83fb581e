# SPDX-License-Identifier: AGPL-3.0-or-later
"""URLs of citizen reports: Open311 GeoReport v2, citizen and operator forms, work queue, public results."""
from django.urls import path, re_path

from reports import views
from reports.api import open311

app_name = "reports"

FMT = r"\.(?P<fmt>json|xml)"

urlpatterns = [
    # Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2/)
    re_path(rf"^open311/v2/discovery{FMT}$", open311.discovery, name="open311-discovery"),
    re_path(rf"^open311/v2/services{FMT}$", open311.services, name="open311-services"),
    re_path(rf"^open311/v2/services/(?P<code>[a-z0-9_]+){FMT}$", open311.service_definition,
            name="open311-service"),
    re_path(rf"^open311/v2/requests{FMT}$", open311.requests, name="open311-requests"),
    re_path(rf"^open311/v2/requests/(?P<request_id>[0-9]+){FMT}$", open311.request_detail, name="open311-request"),
    re_path(rf"^open311/v2/tokens/(?P<token>[0-9a-fA-F-]{{36}}){FMT}$", open311.token, name="open311-token"),
    # Public pages and feeds
    path("reports/", views.public_list, name="public"),
    path("reports/feed.geojson", views.public_feed, name="feed"),
    path("reports/feed.atom", views.public_atom, name="feed-atom"),
    path("reports/<int:report_id>/", views.public_detail, name="public-detail"),
    path("reports/media/<int:media_id>", views.media, name="media"),
    path("reports/new/", views.citizen_form, name="new"),
    path("reports/kpis/", views.kpi_page, name="kpis"),
    path("reports/api/kpis", views.kpi_api, name="kpi-api"),
    path("reports/api/duplicates", views.duplicates_api, name="duplicates-api"),
    # Staff: hotline operators and agency officers
    path("reports/operator/new/", views.operator_form, name="operator-new"),
    path("reports/work/", views.work_queue, name="work"),
    path("reports/work/<int:report_id>/", views.work_detail, name="work-detail"),
    path("reports/api/work", views.work_api, name="work-api"),
    path("reports/api/work/<int:report_id>/<str:action>", views.action_api, name="action-api"),
]
