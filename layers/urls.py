# SPDX-License-Identifier: AGPL-3.0-or-later
"""Routes of the layers API (OGC API Features / Tiles, spatial queries, exports).

Each module adds its own patterns here.
"""
from django.urls import re_path

from layers import api as ogc_api
from layers import latest
from layers import spatial_api
from layers import tiles

# OGC API – Features (layers/api.py). The landing page is the site root. A trailing slash is
# tolerated because clients build URLs by joining strings; collection ids never contain "/".
_ID, _FID = r"(?P<collection_id>[^/]+)", r"(?P<fid>.+?)"
ogc_patterns = [
    re_path(r"^$", ogc_api.landing, name="ogc-landing"),
    re_path(r"^conformance/?$", ogc_api.conformance, name="ogc-conformance"),
    re_path(r"^api/?$", ogc_api.api_definition, name="ogc-api"),
    re_path(r"^collections/?$", ogc_api.collections, name="ogc-collections"),
    re_path(rf"^collections/{_ID}/?$", ogc_api.collection, name="ogc-collection"),
    re_path(rf"^collections/{_ID}/queryables/?$", ogc_api.queryables, name="ogc-queryables"),
    re_path(rf"^collections/{_ID}/items/?$", ogc_api.items, name="ogc-items"),
    re_path(rf"^collections/{_ID}/items/{_FID}/?$", ogc_api.item, name="ogc-item"),
]

# Vector tiles (layers/tiles.py), URLs as Martin: TileJSON at /tiles/{layer} (or .json),
# tiles at /tiles/{layer}/{z}/{x}/{y}.mvt. Segments are matched loosely and validated in the
# view, so a bad z/x/y gets a 400 that says what is wrong instead of a bare 404.
tile_patterns = [
    re_path(r"^tiles/?$", tiles.tile_index, name="tiles-index"),
    re_path(r"^tiles/(?P<layer>[^/]+?)(?:\.json)?$", tiles.tilejson, name="tiles-tilejson"),
    re_path(r"^tiles/(?P<layer>[^/]+)/(?P<z>[^/]+)/(?P<x>[^/]+)/(?P<y>[^/]+)$", tiles.tile, name="tiles-tile"),
    re_path(r"^tiles/(?P<layer>[^/]+)/(?P<rest>.*)$", tiles.bad_tile_path, name="tiles-bad-path"),
]

urlpatterns: list = []
urlpatterns += ogc_patterns
urlpatterns += tile_patterns

# Spatial queries and exports of any query result (layers/spatial_api.py): extension
# endpoints next to /items, on feature collections only.
spatial_patterns = [
    re_path(rf"^collections/{_ID}/nearest/?$", spatial_api.nearest_view, name="spatial-nearest"),
    re_path(rf"^collections/{_ID}/within/?$", spatial_api.within_view, name="spatial-within"),
    re_path(rf"^collections/{_ID}/area/(?P<code>[^/]+)/?$", spatial_api.area_view, name="spatial-area"),
    re_path(rf"^collections/{_ID}/polygon/?$", spatial_api.polygon_view, name="spatial-polygon"),
    re_path(rf"^collections/{_ID}/along/?$", spatial_api.along_view, name="spatial-along"),
    re_path(rf"^collections/{_ID}/per-ward/?$", spatial_api.per_ward_view, name="spatial-per-ward"),
    re_path(rf"^collections/{_ID}/export/?$", spatial_api.export_view, name="spatial-export"),
    re_path(rf"^collections/{_ID}/labels/?$", spatial_api.labels_view, name="spatial-labels"),
]
urlpatterns += spatial_patterns
# Each feature's latest observed values as of a moment (layers/latest.py): the map's replay.
urlpatterns += [re_path(rf"^collections/{_ID}/latest/?$", latest.latest_view, name="layers-latest")]
