# SPDX-License-Identifier: AGPL-3.0-or-later
"""The one feature write path: validate everything, write all or nothing."""
from __future__ import annotations

import pytest
from django.db import transaction
from shapely.geometry import Point, Polygon

from tests.twin.factories import NGO_MON, make_layer, sensor_row
from twin.errors import ImportRejected
from twin.models import Feature
from twin.services import FeatureRow, new_features_statement, write_features
from twin.services.sql import execute_as_one

BOWTIE = Polygon([(107.57, 16.46), (107.58, 16.47), (107.58, 16.46), (107.57, 16.47), (107.57, 16.46)])


@pytest.mark.django_db
def test_rewriting_the_same_rows_updates_instead_of_duplicating():
    layer = make_layer()
    rows = [sensor_row(f"s{i}", NGO_MON[0] + i * 1e-4, NGO_MON[1]) for i in range(5)]
    first = write_features(layer, rows)
    again = write_features(layer, [sensor_row(f"s{i}", NGO_MON[0] + i * 1e-4, NGO_MON[1]) for i in range(5)])
    moved = write_features(layer, [sensor_row("s0", NGO_MON[0], NGO_MON[1] + 1e-3)])
    assert (first.inserted, again.inserted, again.updated, moved.updated) == (5, 0, 0, 1)
    assert Feature.objects.filter(layer=layer).count() == 5


@pytest.mark.django_db
def test_two_writes_in_one_transaction_each_merge_only_their_own_rows():
    """The staging table outlives a call (it is emptied at commit): a second call must not see the first's rows."""
    first_layer, second_layer = make_layer(), make_layer()
    write_features(first_layer, [sensor_row("seed", *NGO_MON)])      # the merge path for both writes below
    write_features(second_layer, [sensor_row("seed", *NGO_MON)])
    with transaction.atomic():
        write_features(first_layer, [sensor_row(f"a{i}", *NGO_MON) for i in range(3)], replace=True)
        report = write_features(second_layer, [sensor_row("b0", *NGO_MON)], replace=True)
    assert (report.inserted, report.deleted) == (1, 1)
    assert sorted(first_layer.features.values_list("external_id", flat=True)) == ["a0", "a1", "a2"]
    assert list(second_layer.features.values_list("external_id", flat=True)) == ["b0"]


@pytest.mark.django_db
def test_replace_removes_features_missing_from_the_new_load():
    layer = make_layer()
    write_features(layer, [sensor_row(f"s{i}", *NGO_MON) for i in range(3)])
    report = write_features(layer, [sensor_row("s0", *NGO_MON)], replace=True)
    assert report.deleted == 2
    assert list(Feature.objects.filter(layer=layer).values_list("external_id", flat=True)) == ["s0"]


@pytest.mark.django_db
def test_one_bad_row_rejects_the_whole_batch_naming_each_row():
    layer = make_layer()
    rows = [sensor_row("ok", *NGO_MON), sensor_row("bad-type", *NGO_MON, sensor_type="volcano"),
            FeatureRow(external_id="", geom=Point(*NGO_MON), properties={"sensor_type": "noise", "unit": "dB"}),
            sensor_row("ok", *NGO_MON)]
    with pytest.raises(ImportRejected) as caught:
        write_features(layer, rows)
    text = str(caught.value)
    assert "row 2 (id 'bad-type')" in text and "sensor_type" in text
    assert "row 3: missing id" in text
    assert "row 4 (id 'ok'): id repeats row 1" in text
    assert caught.value.status == 400
    assert not Feature.objects.filter(layer=layer).exists()


@pytest.mark.django_db
def test_unknown_properties_are_refused_for_strict_kinds():
    layer = make_layer()
    with pytest.raises(ImportRejected, match="extra_field"):
        write_features(layer, [sensor_row("s", *NGO_MON, extra_field=1)])


@pytest.mark.django_db
def test_geometry_type_must_fit_the_layer():
    layer = make_layer()
    with pytest.raises(ImportRejected, match="cannot have a Polygon geometry"):
        write_features(layer, [FeatureRow("p", BOWTIE.buffer(0), {"sensor_type": "noise", "unit": "dB"})])


@pytest.mark.django_db
def test_self_intersecting_polygon_is_repaired_with_st_makevalid_and_reported():
    layer = make_layer(kind="generic", geometry_type="Polygon")
    report = write_features(layer, [FeatureRow("bowtie", BOWTIE)])
    assert len(report.repaired) == 1 and "Self-intersection" in report.repaired[0]
    stored = Feature.objects.get(layer=layer)
    assert stored.geom.valid and stored.geom.geom_type == "MultiPolygon"


@pytest.mark.django_db
def test_self_intersecting_polygon_is_rejected_when_asked():
    layer = make_layer(kind="generic", geometry_type="Polygon")
    with pytest.raises(ImportRejected, match="Self-intersection"):
        write_features(layer, [FeatureRow("bowtie", BOWTIE)], on_invalid="reject")
    assert not Feature.objects.filter(layer=layer).exists()


@pytest.mark.django_db
def test_features_outside_the_city_extent_are_rejected(hue):
    layer = make_layer(city=hue)
    hanoi = (105.8342, 21.0278)
    with pytest.raises(ImportRejected, match="outside the extent of"):
        write_features(layer, [sensor_row("inside", *NGO_MON), sensor_row("hanoi", *hanoi)])
    assert not Feature.objects.filter(layer=layer).exists()


@pytest.mark.django_db
def test_swapped_latitude_and_longitude_are_caught():
    layer = make_layer()
    with pytest.raises(ImportRejected, match="not longitude/latitude"):
        write_features(layer, [sensor_row("swapped", 16.4679, 107.5786)])


def _fresh_ids(n: int) -> list[int]:
    from twin.services.sql import allocate_ids
    return allocate_ids({Feature: n})[Feature]


@pytest.mark.django_db
def test_new_rows_are_inserted_under_the_given_ids_by_one_statement():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    layer = make_layer()
    write_features(layer, [sensor_row("seed", *NGO_MON)])
    ids = _fresh_ids(3)
    statement = new_features_statement(layer, [sensor_row(f"n{i}", *NGO_MON) for i in range(3)], ids)
    with CaptureQueriesContext(connection) as queries:
        execute_as_one([statement])
    assert len(queries.captured_queries) == 1 and "INSERT INTO twin_feature" in queries.captured_queries[0]["sql"]
    assert dict(layer.features.filter(external_id__startswith="n").values_list("external_id", "id")) == {
        "n0": ids[0], "n1": ids[1], "n2": ids[2]}
    feature, seed = layer.features.get(external_id="n1"), layer.features.get(external_id="seed")
    assert (feature.status, feature.properties, feature.geom.ewkt) == (seed.status, seed.properties, seed.geom.ewkt)


@pytest.mark.django_db
def test_new_rows_are_checked_like_every_write_and_refused_before_anything_is_sent(hue):
    polygons = make_layer(kind="generic", geometry_type="Polygon")
    with pytest.raises(ImportRejected, match="Self-intersection"):
        new_features_statement(polygons, [FeatureRow("bowtie", BOWTIE)], _fresh_ids(1))
    sensors = make_layer(city=hue)
    with pytest.raises(ImportRejected, match="outside the extent of"):
        new_features_statement(sensors, [sensor_row("inside", *NGO_MON), sensor_row("hanoi", 105.8342, 21.0278)],
                               _fresh_ids(2))
    assert not Feature.objects.filter(layer__in=[polygons, sensors]).exists()


@pytest.mark.django_db
def test_a_new_row_with_an_external_id_already_in_the_layer_fails_instead_of_updating():
    from django.db import IntegrityError

    layer = make_layer()
    write_features(layer, [sensor_row("s0", *NGO_MON)])
    with pytest.raises(IntegrityError), transaction.atomic():
        execute_as_one([new_features_statement(layer, [sensor_row("s0", NGO_MON[0], NGO_MON[1] + 1e-3)],
                                               _fresh_ids(1))])
    assert layer.features.count() == 1
