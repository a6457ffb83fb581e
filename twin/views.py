# SPDX-License-Identifier: AGPL-3.0-or-later
"""HTTP views of the spatial core (thin wrappers over services)."""
from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from twin.models import AdminLevel

# Outline simplification for the admin base map, in degrees (about 20 m at
# Huế's latitude): plenty for orientation, a few hundred KB for a province.
BASEMAP_TOLERANCE_DEG = 0.0002
_BASEMAP_SQL = """
SELECT json_build_object(
  'type', 'FeatureCollection',
  'attribution', %(attribution)s::text,
  'features', coalesce(json_agg(json_build_object(
     'type', 'Feature', 'id', a.id,
     'properties', json_build_object('code', a.code, 'level', a.level, 'name', a.name_vi),
     'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, %(tolerance)s), 6)::json)
   ORDER BY a.level, a.code), '[]'::json))::text
FROM twin_adminarea a
WHERE a.level = %(ward)s
   OR (a.level = %(province)s AND (
        EXISTS (SELECT 1 FROM twin_adminarea w WHERE w.parent_id = a.id)
        OR EXISTS (SELECT 1 FROM twin_city c WHERE c.province_id = a.id)))
"""


def health(request):
    """Liveness plus a database round-trip, for load balancers and `make demo`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        postgis = cursor.fetchone()[0]
    return JsonResponse({"status": "ok", "postgis": postgis})


@require_GET
def admin_basemap(request):
    """Ward and province outlines as GeoJSON: the admin map's offline base layer.

    Wired in ``twin.urls`` behind ``admin.site.admin_view`` (staff only). Only
    provinces that have wards loaded or a city are drawn, so a country-wide
    province file does not bloat every admin page.
    """
    params = {"attribution": settings.ADMIN_BASEMAP_ATTRIBUTION, "tolerance": BASEMAP_TOLERANCE_DEG,
              "ward": int(AdminLevel.WARD), "province": int(AdminLevel.PROVINCE)}
    with connection.cursor() as cursor:
        cursor.execute(_BASEMAP_SQL, params)
        body = cursor.fetchone()[0]
    response = HttpResponse(body, content_type="application/geo+json")
    response["Cache-Control"] = "private, max-age=300"
    return response
