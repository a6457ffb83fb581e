# SPDX-License-Identifier: AGPL-3.0-or-later
"""HTTP views of the spatial core (thin wrappers over services)."""
from __future__ import annotations

from django.db import connection
from django.http import JsonResponse


def health(request):
    """Liveness plus a database round-trip, for load balancers and `make demo`."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT postgis_lib_version()")
        postgis = cursor.fetchone()[0]
    return JsonResponse({"status": "ok", "postgis": postgis})
