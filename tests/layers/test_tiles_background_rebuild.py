# SPDX-License-Identifier: AGPL-3.0-or-later
"""After a write to a big point layer, dense tiles do not wait for the overview rebuild.

They are drawn from the previous overview (counts one write behind, marked
provisional, cached nowhere) while a thread rebuilds it; once it is built the
tiles are exact again. Needs committed data (the rebuild thread has its own
connection), so the layer is committed and deleted afterwards.
"""
from __future__ import annotations

import gzip

import pytest
import shapely
from django.core.cache import caches
from django.test import Client

from layers.tilecache import LAYER_LOOKUPS, layer_with_version
from layers.tileconfig import tile_config
from layers.tileoverview import reset_memo, wait_for_rebuilds
from layers.tilerender import Tile, render
from tests.layers.tilehelpers import count_in_tile, decode, inside, tile_of, url
from twin.models import Feature, Layer
from twin.services import FeatureRow, write_features
from twin.services.layers import LayerSpec, ensure_layer

ORIGIN, SIDE, STEP = (107.570, 16.460), 70, 0.0002
CENTRE = (ORIGIN[0] + SIDE * STEP / 2, ORIGIN[1] + SIDE * STEP / 2)
CAPS = {"feature_cap": 100, "live_cluster_limit": 1000, "background_rebuild_min": 1000}


def grid(prefix: str, offset: float) -> list[FeatureRow]:
    return [FeatureRow(f"{prefix}{i}-{j}", shapely.Point(ORIGIN[0] + i * STEP + offset, ORIGIN[1] + j * STEP + offset),
                       {"sensor_type": "traffic_counter", "unit": "xe/h"}) for i in range(SIDE) for j in range(SIDE)]


@pytest.fixture
def committed_dense_layer(django_db_setup, django_db_blocker, settings):
    settings.TILES = {**settings.TILES, **CAPS}
    caches["tiles"].clear()
    reset_memo()
    LAYER_LOOKUPS.forget()
    with django_db_blocker.unblock():
        Feature.objects.filter(layer__slug="t-tiles-background-rebuild").delete()  # a crashed earlier run
        layer = ensure_layer(LayerSpec(slug="t-tiles-background-rebuild", title_vi="Thử dựng lại nền",
                                       title_en="Background rebuild test", kind="sensor", geometry_type="Point", is_public=True,
                                       attribution="© CityTwin tests"))
        try:
            write_features(layer, grid("a", 0.0))
            yield layer
        finally:
            wait_for_rebuilds()
            Feature.objects.filter(layer=layer).delete()
            Layer.objects.filter(pk=layer.pk).delete()
            caches["tiles"].clear()
            reset_memo()


def cluster_sum(body: bytes, slug: str) -> int:
    found = decode(body).get(slug, {"features": []})["features"]
    return sum(f["properties"]["count"] for f in found if inside(f) and f["properties"].get("cluster"))


def test_dense_tile_after_a_write_is_provisional_then_exact(committed_dense_layer):
    layer, cfg = committed_dense_layer, tile_config()
    address = tile_of(*CENTRE, 14)
    first = render(layer_with_version(None, layer.slug), Tile(*address), cfg)  # builds the first overview
    before = count_in_tile(layer, address)
    assert not first.provisional and cluster_sum(first.body, layer.slug) == before

    write_features(layer, grid("b", STEP / 2))  # doubles the points: the overview is now stale
    after = count_in_tile(layer, address)
    assert after > before
    provisional = render(layer_with_version(None, layer.slug), Tile(*address), cfg)
    assert provisional.provisional and cluster_sum(provisional.body, layer.slug) == before

    wait_for_rebuilds()
    exact = render(layer_with_version(None, layer.slug), Tile(*address), cfg)
    assert not exact.provisional and cluster_sum(exact.body, layer.slug) == after


def test_provisional_tile_is_neither_cached_nor_given_an_etag(committed_dense_layer):
    layer, client = committed_dense_layer, Client()
    address = tile_of(*CENTRE, 14)
    assert client.get(url(layer.slug, address)).status_code == 200
    write_features(layer, grid("b", STEP / 2))
    response = client.get(url(layer.slug, address))
    assert response["X-Tile-Cache"] == "provisional" and response["Cache-Control"] == "no-store"
    assert "ETag" not in response
    wait_for_rebuilds()
    LAYER_LOOKUPS.forget()
    fresh = client.get(url(layer.slug, address))
    assert fresh["X-Tile-Cache"] == "miss" and fresh.has_header("ETag")
    body = gzip.decompress(fresh.content) if fresh.get("Content-Encoding") == "gzip" else fresh.content
    assert cluster_sum(body, layer.slug) == count_in_tile(layer, address)
