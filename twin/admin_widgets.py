# SPDX-License-Identifier: AGPL-3.0-or-later
"""The admin's map widget, offline: no CDN scripts and no remote tiles.

Django's ``OpenLayersWidget`` loads OpenLayers from cdn.jsdelivr.net and its
subclasses draw NASA or OpenStreetMap tiles. An operations centre may have no
Internet at all, so this widget loads OpenLayers from our static files (built
from npm by ``make deps``, see ``map_ui/package.json``) and draws, as its base
map, ward and province outlines served by our own server
(:func:`twin.views.admin_basemap`).
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.forms import OpenLayersWidget
from django.urls import reverse

from twin.models import City


class OfflineMapWidget(OpenLayersWidget):
    template_name = "twin/widgets/offline_map.html"
    map_srid = 3857
    fallback_view = (0.0, 0.0, 2.0)  # lon, lat, zoom when no city is loaded

    class Media:
        # extend = False: the parent's Media points at the CDN and must not be merged in.
        extend = False
        css = {"all": ("map_ui/vendor/ol/ol.css", "gis/css/ol3.css", "twin/admin/offline_map.css")}
        js = ("map_ui/vendor/ol/ol.js", "gis/js/OLMapWidget.js", "twin/admin/offline_map.js")

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        lon, lat, zoom = self.default_view()
        context.update(basemap_url=reverse("admin-basemap"), attribution=settings.ADMIN_BASEMAP_ATTRIBUTION,
                       default_lon=lon, default_lat=lat, default_zoom=zoom)
        return context

    def default_view(self) -> tuple[float, float, float]:
        """Centre on the default city when the geometry is empty (a new feature)."""
        city = City.objects.filter(slug=settings.DEFAULT_CITY).only("center", "default_zoom").first()
        if city is None or city.center is None:
            return self.fallback_view
        return city.center.x, city.center.y, city.default_zoom
