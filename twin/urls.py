# SPDX-License-Identifier: AGPL-3.0-or-later
"""URLs. ``/collections`` and ``/tiles`` are reserved for the OGC layers API (a later app)."""
from django.contrib import admin
from django.urls import include, path

from twin import api, views

api_patterns = [
    path("api/resolve", api.resolve, name="api-resolve"),
    path("api/nearest", api.nearest_features, name="api-nearest"),
    path("api/within", api.within_features, name="api-within"),
    path("api/events", api.events, name="api-events"),
    path("api/events/<int:event_id>", api.event_detail, name="api-event"),
    path("api/events/<int:event_id>/transition", api.event_transition, name="api-event-transition"),
]

urlpatterns = [
    # Before the admin's own URLs: the admin map widget's offline base layer (staff only).
    path("admin/twin/basemap.geojson", admin.site.admin_view(views.admin_basemap), name="admin-basemap"),
    path("admin/", admin.site.urls),
    path("health", views.health, name="health"),
    *api_patterns,
    path("map/", include("map_ui.urls")),
    path("cameras/", include("cameras.urls")),
    path("", include("reports.urls")),
    path("", include("layers.urls")),
]
