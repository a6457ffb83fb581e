# SPDX-License-Identifier: AGPL-3.0-or-later
"""Map helpers in the layers API: label points without outlines, feature counts in /collections."""
from __future__ import annotations

import pytest
import shapely

from tests.layers.ogc_fixtures import *  # noqa: F403
from tests.layers.ogc_fixtures import assert_ogc_error, json_of
from twin.models import AdminArea, Feature, Layer

pytestmark = pytest.mark.django_db


def test_ward_labels_are_points_inside_each_named_ward(client):
    response = client.get("/collections/hue-wards/labels")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/geo+json")
    body = json_of(response)
    wards = Feature.objects.filter(layer__slug="hue-wards").exclude(name="")
    assert body["numberReturned"] == len(body["features"]) == wards.count() == 40
    outlines = {f.external_id: shapely.from_wkb(bytes(f.geom.wkb)) for f in wards}
    for label in body["features"]:
        assert label["geometry"]["type"] == "Point" and label["properties"]["name"]
        assert outlines[label["id"]].buffer(1e-6).contains(shapely.Point(label["geometry"]["coordinates"]))
    assert len(response.content) < 20_000  # a few KB, not the outlines' megabytes


def test_labels_of_a_private_layer_are_404_for_the_public_and_never_shared_cached(client):
    private = Layer.objects.filter(is_public=False).first()
    assert_ogc_error(client.get(f"/collections/{private.slug}/labels"), 404)


def test_labels_refuse_parameters_they_do_not_take(client):
    body = assert_ogc_error(client.get("/collections/hue-wards/labels", {"bbox": "1,2,3,4"}), 400)
    assert "bbox" in body["description"]


def test_collections_carry_their_feature_count(client):
    found = {c["id"]: c for c in json_of(client.get("/collections"))["collections"]}
    assert found["hue-wards"]["x-citytwin"]["features"] == 40
    assert found["hue-buildings"]["x-citytwin"]["features"] == Feature.objects.filter(
        layer__slug="hue-buildings").count()
    assert AdminArea.objects.exists()
