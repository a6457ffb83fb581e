# SPDX-License-Identifier: AGPL-3.0-or-later
"""The database itself refuses bad rows, whatever code path writes them."""
from __future__ import annotations

import pytest
from django.contrib.gis.geos import GEOSGeometry, Point
from django.db import IntegrityError, connection, transaction

from tests.twin.factories import NGO_MON, make_layer
from twin.models import Feature, Layer


def _feature(layer: Layer, **overrides) -> Feature:
    values = dict(layer=layer, external_id="f1", geom=Point(*NGO_MON, srid=4326),
                  properties={"sensor_type": "air_quality", "unit": "µg/m³"})
    values.update(overrides)
    return Feature(**values)


def _violates(feature: Feature) -> bool:
    try:
        with transaction.atomic():
            feature.save()
    except IntegrityError:
        return True
    return False


@pytest.mark.django_db
def test_external_id_is_unique_within_a_layer_but_not_across_layers():
    first, second = make_layer(), make_layer()
    _feature(first).save()
    assert _violates(_feature(first))
    assert not _violates(_feature(second))


@pytest.mark.django_db
@pytest.mark.parametrize("overrides", [
    {"external_id": ""},
    {"status": "exploded"},
    {"height_m": -3.0},
    {"height_m": 5000.0},
    {"geom": GEOSGeometry("SRID=4326;POLYGON((107.5 16.4, 107.6 16.5, 107.6 16.4, 107.5 16.5, 107.5 16.4))")},
], ids=["empty-id", "unknown-status", "negative-height", "absurd-height", "self-intersecting"])
def test_database_constraints_refuse_bad_features(overrides):
    assert _violates(_feature(make_layer(geometry_type="Geometry"), **overrides))


@pytest.mark.django_db
def test_reserved_layer_slugs_are_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        Layer.objects.create(slug="collections", title_vi="x", kind="generic")


@pytest.mark.django_db
def test_geometry_is_stored_in_wgs84_with_a_geography_index():
    layer = make_layer()
    _feature(layer).save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT Find_SRID('public', 'twin_feature', 'geom')")
        assert cursor.fetchone()[0] == 4326
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'twin_feature_geog_gist'")
        assert "geography" in cursor.fetchone()[0]


@pytest.mark.django_db
def test_observations_table_is_partitioned_by_time_with_brin_and_no_triggers():
    with connection.cursor() as cursor:
        cursor.execute("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'twin_observation'::regclass")
        assert cursor.fetchone()[0] == "r"
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'twin_observation'")
        definitions = " ".join(r[0] for r in cursor.fetchall())
        assert "USING brin" in definitions
        cursor.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = 'twin_observation'::regclass")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'twin_observation'::regclass "
                       "AND contype = 'f'")
        assert cursor.fetchone()[0] == 0
