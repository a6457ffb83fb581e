# SPDX-License-Identifier: AGPL-3.0-or-later
"""System checks name what is missing and how to fix it."""
from __future__ import annotations

import uuid

import psycopg
import pytest
from django.db import connection

from twin.checks import check_geo_libraries, check_postgis, postgis_problems


def test_gdal_and_geos_are_found_and_recent_enough():
    assert check_geo_libraries() == []


@pytest.mark.django_db
def test_postgis_check_passes_on_the_project_database():
    assert check_postgis(databases=["default"]) == []


@pytest.mark.django_db
def test_postgis_check_explains_a_database_without_postgis():
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    name = f"ct_nopostgis_{uuid.uuid4().hex[:8]}"
    base = {k: v for k, v in params.items() if k in {"host", "port", "user", "password"}}
    with psycopg.connect(**base, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            with psycopg.connect(**base, dbname=name) as bare, bare.cursor() as cursor:
                problems = postgis_problems(cursor)
        finally:
            admin.execute(f'DROP DATABASE "{name}"')
    assert [p.id for p in problems] == ["twin.E011"]
    assert "CREATE EXTENSION postgis" in problems[0].hint
