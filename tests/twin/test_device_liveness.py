# SPDX-License-Identifier: AGPL-3.0-or-later
"""Device liveness lives in its own narrow table; the feature row is written only when status changes."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

from tests.twin.factories import NGO_MON, make_layer, sensor_row
from twin.cities.loader import settle_tables
from twin.models import DeviceLiveness, Feature, last_seen_sql
from twin.services import mark_devices_seen, write_features

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def sensor() -> int:
    layer = make_layer("sensor")
    write_features(layer, [sensor_row("s-live", *NGO_MON)])
    return Feature.objects.get(layer=layer, external_id="s-live").pk


def row_version(feature_id: int) -> str:
    """The feature row's ctid and xmin: both change whenever the row is rewritten."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ctid::text || '/' || xmin::text FROM twin_feature WHERE id = %s", [feature_id])
        return cursor.fetchone()[0]


def test_a_report_writes_the_liveness_row_and_leaves_the_feature_row_untouched(sensor):
    before = row_version(sensor)
    assert mark_devices_seen({sensor: NOW}) == 1
    assert mark_devices_seen({sensor: NOW + timedelta(seconds=30)}) == 1
    assert row_version(sensor) == before
    assert DeviceLiveness.objects.get(feature_id=sensor).last_seen == NOW + timedelta(seconds=30)
    assert Feature.objects.get(pk=sensor).last_seen == NOW + timedelta(seconds=30)


def test_a_status_change_rewrites_the_feature_row_once(sensor):
    mark_devices_seen({sensor: NOW})
    before = row_version(sensor)
    mark_devices_seen({sensor: NOW + timedelta(seconds=1)}, {sensor: "maintenance"})
    changed = row_version(sensor)
    mark_devices_seen({sensor: NOW + timedelta(seconds=2)}, {sensor: "maintenance"})   # the same status again
    assert (before != changed, row_version(sensor) == changed) == (True, True)
    assert Feature.objects.get(pk=sensor).status == "maintenance"


def test_an_unknown_feature_id_is_skipped_not_an_error(sensor):
    assert mark_devices_seen({sensor: NOW, 10**12: NOW}) == 1
    assert not DeviceLiveness.objects.filter(feature_id=10**12).exists()


def test_a_feature_never_heard_from_has_no_last_seen(sensor):
    assert Feature.objects.get(pk=sensor).last_seen is None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {last_seen_sql('f')} FROM twin_feature f WHERE f.id = %s", [sensor])
        assert cursor.fetchone()[0] is None


def test_deleting_a_feature_in_sql_deletes_its_liveness(sensor):
    mark_devices_seen({sensor: NOW})
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM twin_feature WHERE id = %s", [sensor])
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")     # the foreign keys are deferred: check them now
    assert not DeviceLiveness.objects.filter(feature_id=sensor).exists()


def test_reloading_a_layer_without_the_device_removes_it_and_its_liveness():
    layer = make_layer("sensor")
    write_features(layer, [sensor_row("gone", *NGO_MON), sensor_row("kept", *NGO_MON)])
    gone = Feature.objects.get(layer=layer, external_id="gone").pk
    mark_devices_seen({gone: NOW})
    write_features(layer, [sensor_row("kept", *NGO_MON)], replace=True)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert not DeviceLiveness.objects.filter(feature_id=gone).exists()


def test_settling_tables_is_skipped_inside_a_transaction():
    with transaction.atomic():
        assert settle_tables() is False


def test_settling_tables_vacuums_and_analyzes_them_outside_a_transaction():
    # A second connection, outside the test's transaction (a transactional test would flush the session's city).
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        assert settle_tables(using=other) is True
        with other.cursor() as cursor:
            cursor.execute("SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables "
                           "WHERE relname = 'twin_feature'")
            assert cursor.fetchone()[0] is True
    finally:
        other.close()
