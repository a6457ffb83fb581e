# SPDX-License-Identifier: AGPL-3.0-or-later
"""Fixtures and helpers shared by the OGC API – Features tests (tests/layers/test_ogc_*.py).

Imported explicitly by those modules (``from tests.layers.ogc_fixtures import *``) so
other test modules of tests/layers are not affected.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from shapely.geometry import Point

from layers import registry
from layers.collections import clear_extent_cache
from tests.twin.factories import NGO_MON, make_layer, offset
from twin.roles import Role
from twin.services import FeatureRow, create_api_token, write_features
from twin.services.users import UserSpec, ensure_user

__all__ = ["api_get", "assert_ogc_error", "fresh_registry", "json_of", "planner_token", "operator_token",
           "report_layer", "sql_count", "private_sensor_layer", "SQL_WORDS", "CITY_BBOX"]

# Words that must never reach an error message (SQL or server internals).
SQL_WORDS = re.compile(r"(?i)\b(select|insert|update|delete|drop|from\s+twin_|twin_feature|psycopg|traceback|"
                       r"syntax error at|ST_[A-Za-z]+\()")
CITY_BBOX = (107.40, 16.30, 107.80, 16.70)


@pytest.fixture(autouse=True)
def fresh_registry():
    """Providers and extents are cached per process; start each test clean."""
    registry.clear_caches()
    clear_extent_cache()
    yield
    registry.clear_caches()
    clear_extent_cache()


def api_get(client, url: str, token: str | None = None, **headers):
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.get(url, **headers)


def json_of(response) -> dict:
    return json.loads(response.content)


def assert_ogc_error(response, status: int, code: str | None = None) -> dict:
    """The response is ``status`` with an OGC exception body that leaks no SQL."""
    assert response.status_code == status, response.content[:500]
    body = json_of(response)
    assert set(body) >= {"code", "description"} and body["description"], body
    if code is not None:
        assert body["code"] == code, body
    assert not SQL_WORDS.search(body["description"]), body["description"]
    return body


def sql_count(sql: str, params: list) -> int:
    """An independent count straight from SQL, to check the API against."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _token_for(role: Role, name: str) -> str:
    user = ensure_user(UserSpec(username=name, roles=(role,)))[0]
    return create_api_token(user, f"{name}-token")[1]


@pytest.fixture
def planner_token(db) -> str:
    """A bearer token of a planner: reads private layers, not events."""
    return _token_for(Role.PLANNER, "ogc-planner")


@pytest.fixture
def operator_token(db) -> str:
    """A bearer token of an operator: reads private layers and events."""
    return _token_for(Role.OPERATOR, "ogc-operator")


@pytest.fixture
def private_sensor_layer(hue):
    """A private sensor layer of 12 sensors in a row east of Ngọ Môn (ids s00..s11)."""
    layer = make_layer("sensor", city=hue)
    rows = []
    for i in range(12):
        lon, lat = offset(NGO_MON, 90, 50 * i)
        rows.append(FeatureRow(external_id=f"s{i:02d}", geom=Point(lon, lat), name=f"Trạm {i:02d}",
                               properties={"sensor_type": "water_level" if i % 3 == 0 else "air_quality",
                                           "unit": "cm" if i % 3 == 0 else "µg/m³"}))
    write_features(layer, rows)
    return layer


REPORT_START = datetime(2025, 7, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def report_layer(hue):
    """A public citizen-report layer: 10 reports, one per day from 2025-07-01 08:00Z (ids r0..r9)."""
    layer = make_layer("citizen_report", city=hue, public=True)
    rows = []
    for i in range(10):
        lon, lat = offset(NGO_MON, 180, 40 * i)
        rows.append(FeatureRow(external_id=f"r{i}", geom=Point(lon, lat), name=f"Phản ánh {i}",
                               properties={"category": "flood" if i % 2 else "lighting",
                                           "reported_at": (REPORT_START + timedelta(days=i)).isoformat()}))
    write_features(layer, rows)
    return layer
