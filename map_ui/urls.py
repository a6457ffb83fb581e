# SPDX-License-Identifier: AGPL-3.0-or-later
"""Routes of the map page, mounted at ``/map/`` by ``twin/urls.py``."""
from django.contrib.auth import views as auth_views
from django.urls import include, path

from map_ui import views

urlpatterns = [
    path("", views.map_page, name="map"),
    path("wall/", views.wall_page, name="map-wall"),
    path("wall/views", views.wall_views, name="map-wall-views"),
    path("login/", views.MapLoginView.as_view(), name="map-login"),
    path("logout/", auth_views.LogoutView.as_view(next_page="/map/"), name="map-logout"),
    # Django's set_language (POST language=vi|en, next=...): sets the language cookie.
    path("i18n/", include("django.conf.urls.i18n")),
]
