# SPDX-License-Identifier: AGPL-3.0-or-later
"""Observations: partitions appear as needed, repeats are skipped, unknown features refused."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from tests.twin.factories import NGO_MON, make_layer, sensor_row
from twin.errors import ImportRejected
from twin.models import Feature, Observation
from twin.services import ObservationRow, record_observations, write_features


@pytest.fixture
def sensor(db) -> Feature:
    layer = make_layer()
    write_features(layer, [sensor_row("pm25-1", *NGO_MON)])
    return Feature.objects.get(layer=layer)


def _partition_of(feature_id: int, moment: datetime) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tableoid::regclass::text FROM twin_observation WHERE feature_id = %s AND time = %s",
                       [feature_id, moment])
        return cursor.fetchone()[0]


def test_readings_land_in_monthly_partitions_created_on_demand(sensor):
    january = datetime(2031, 1, 31, 23, tzinfo=timezone.utc)
    rows = [ObservationRow(sensor.pk, january + timedelta(hours=h), {"pm25": 10 + h}) for h in range(3)]
    report = record_observations(rows)
    assert report.inserted == 3
    assert _partition_of(sensor.pk, january) == "twin_observation_203101"
    assert _partition_of(sensor.pk, january + timedelta(hours=2)) == "twin_observation_203102"


def test_repeated_readings_are_counted_as_duplicates_not_errors(sensor):
    moment = datetime(2031, 3, 1, tzinfo=timezone.utc)
    record_observations([ObservationRow(sensor.pk, moment, {"pm25": 1})])
    report = record_observations([ObservationRow(sensor.pk, moment, {"pm25": 1}),
                                  ObservationRow(sensor.pk, moment + timedelta(hours=1), {"pm25": 2})])
    assert (report.inserted, report.duplicates) == (1, 1)
    assert Observation.objects.filter(feature=sensor).count() == 2


def test_moving_features_keep_their_position_per_observation(sensor):
    moment = datetime(2031, 4, 1, tzinfo=timezone.utc)
    record_observations([ObservationRow(sensor.pk, moment, {"sog": 5.2}, lon=107.6, lat=16.5)])
    stored = Observation.objects.get(feature=sensor, time=moment)
    assert (stored.position.x, stored.position.y, stored.position.srid) == (107.6, 16.5, 4326)


def test_values_with_tabs_and_backslashes_survive_copy(sensor):
    moment = datetime(2031, 5, 1, tzinfo=timezone.utc)
    values = {"note": "a\tb\\c\nd", "ok": True, "ten": "Phường Phú Xuân"}
    record_observations([ObservationRow(sensor.pk, moment, values)])
    assert Observation.objects.get(feature=sensor, time=moment).values == values


def test_unknown_feature_ids_reject_the_batch(sensor):
    moment = datetime(2031, 6, 1, tzinfo=timezone.utc)
    with pytest.raises(ImportRejected, match="unknown feature id"):
        record_observations([ObservationRow(sensor.pk, moment, {}), ObservationRow(sensor.pk + 10**9, moment, {})])
    assert not Observation.objects.filter(feature=sensor, time=moment).exists()


def test_naive_times_are_refused(sensor):
    with pytest.raises(ImportRejected, match="time zone"):
        record_observations([ObservationRow(sensor.pk, datetime(2031, 7, 1), {})])


@pytest.fixture
def partitions_noted(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the partition notes), and forget the notes afterwards (test partitions roll back)."""
    from twin.services.observations import _PARTITIONS_SEEN

    yield django_capture_on_commit_callbacks
    _PARTITIONS_SEEN.forget()


def test_a_partition_found_is_not_looked_up_again_for_every_batch(sensor, partitions_noted):
    from django.test.utils import CaptureQueriesContext

    moment = datetime(2031, 5, 5, 8, tzinfo=timezone.utc)
    record_observations([ObservationRow(sensor.pk, moment, {"pm25": 1})])      # creates the partition
    with partitions_noted(execute=True):                                        # finds it, noted "on commit"
        record_observations([ObservationRow(sensor.pk, moment + timedelta(minutes=1), {"pm25": 2})])
    with CaptureQueriesContext(connection) as queries:
        record_observations([ObservationRow(sensor.pk, moment + timedelta(minutes=2), {"pm25": 3})])
    assert not [q for q in queries.captured_queries if "to_regclass" in q["sql"]]
    assert _partition_of(sensor.pk, moment + timedelta(minutes=2)) == "twin_observation_203105"


def test_a_partition_dropped_after_it_was_noted_sends_rows_to_the_default_partition_not_away(
        sensor, partitions_noted):
    moment = datetime(2031, 4, 5, 8, tzinfo=timezone.utc)
    record_observations([ObservationRow(sensor.pk, moment, {"pm25": 1})])
    with partitions_noted(execute=True):
        record_observations([ObservationRow(sensor.pk, moment + timedelta(minutes=1), {"pm25": 2})])   # noted
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE twin_observation_203104")
    record_observations([ObservationRow(sensor.pk, moment + timedelta(minutes=2), {"pm25": 3})])
    assert _partition_of(sensor.pk, moment + timedelta(minutes=2)) == "twin_observation_default"
    assert Observation.objects.filter(feature=sensor, time=moment + timedelta(minutes=2)).exists()
