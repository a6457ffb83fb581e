# SPDX-License-Identifier: AGPL-3.0-or-later
"""System checks: say clearly when GDAL, GEOS or PostGIS is missing or too old."""
from __future__ import annotations

from django.core import checks
from django.db import connection
from django.db.utils import Error as DatabaseError

MIN_GEOS = (3, 8)
MIN_GDAL = (3, 0)
MIN_POSTGIS = (3, 0)
APT_HINT = "On Debian 12: sudo apt-get install gdal-bin libgdal32 libgeos-c1v5 libproj25 (or run `make deps`)."


@checks.register(checks.Tags.compatibility)
def check_geo_libraries(app_configs=None, **kwargs):
    errors = []
    try:
        from django.contrib.gis.geos.libgeos import geos_version_tuple

        if geos_version_tuple()[:2] < MIN_GEOS:
            errors.append(checks.Error(f"GEOS {geos_version_tuple()} is older than {MIN_GEOS}", hint=APT_HINT,
                                       id="twin.E002"))
    except Exception as exc:  # ImproperlyConfigured / OSError when the library is absent
        errors.append(checks.Error(f"GEOS library not found: {exc}", hint=APT_HINT, id="twin.E001"))
    try:
        from django.contrib.gis.gdal import gdal_version

        version = tuple(int(p) for p in gdal_version().decode().split(".")[:2])
        if version < MIN_GDAL:
            errors.append(checks.Error(f"GDAL {version} is older than {MIN_GDAL}", hint=APT_HINT, id="twin.E004"))
    except Exception as exc:
        errors.append(checks.Error(f"GDAL library not found: {exc}", hint=APT_HINT + " Or set GDAL_LIBRARY_PATH.",
                                   id="twin.E003"))
    return errors


@checks.register(checks.Tags.database)
def check_postgis(app_configs=None, databases=None, **kwargs):
    """Only runs when Django checks databases (``migrate``, ``check --database default``)."""
    if not databases or "default" not in databases:
        return []
    try:
        with connection.cursor() as cursor:
            return postgis_problems(cursor)
    except DatabaseError as exc:
        return [checks.Error(f"cannot reach the database: {exc}", hint="Is DATABASE_URL right? `make services`.",
                             id="twin.E010")]


def postgis_problems(cursor) -> list[checks.CheckMessage]:
    """What is wrong with PostGIS on the database behind ``cursor`` (empty when all is well)."""
    hint = ("Install postgresql-15-postgis-3 and run, as a superuser, CREATE EXTENSION postgis; "
            "`make services` does both for the project-local cluster.")
    cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
    row = cursor.fetchone()
    if row is None:
        return [checks.Error("the PostGIS extension is not installed in the database", hint=hint, id="twin.E011")]
    version = tuple(int(p) for p in row[0].split(".")[:2])
    if version < MIN_POSTGIS:
        return [checks.Error(f"PostGIS {row[0]} is older than {MIN_POSTGIS}", hint=hint, id="twin.E012")]
    return []
