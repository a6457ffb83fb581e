# SPDX-License-Identifier: AGPL-3.0-or-later
"""The tile endpoints reuse a layer's row and data version for ``TileConfig.layer_ttl`` seconds.

What matters is that reuse never serves a stale version for longer than the
TTL, never outlives a write in the same process, and never keeps anything
read inside a transaction. The queries run against the committed Huế city
(tests/conftest.py) outside any test transaction, as a server thread would.
"""
from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from layers.tilecache import LAYER_LOOKUPS, LayerLookupCache, layer_with_version
from layers.tileconfig import TileConfig
from twin.models import Layer
from twin.signals import layer_data_changed

CFG = TileConfig(layer_ttl=30)
SLUG = "hue-wards"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def committed(django_db_setup, django_db_blocker):
    """Queries outside any transaction, on the committed city (like a server thread)."""
    LAYER_LOOKUPS.forget()
    with django_db_blocker.unblock():
        yield
    LAYER_LOOKUPS.forget()


def _lookup() -> tuple[Layer, int]:
    with CaptureQueriesContext(connection) as queries:
        layer = layer_with_version(AnonymousUser(), SLUG, cfg=CFG)
    return layer, len(queries.captured_queries)


def test_entry_expires_after_its_ttl():
    clock = FakeClock()
    cache = LayerLookupCache(clock=clock)
    layer = Layer(pk=7, slug="x")
    cache.put(("x", False, False), layer, ttl=1.0)
    assert cache.get(("x", False, False)) is layer
    clock.now += 1.0
    assert cache.get(("x", False, False)) is None


def test_zero_ttl_keeps_nothing():
    cache = LayerLookupCache()
    cache.put(("x", False, False), Layer(pk=7, slug="x"), ttl=0)
    assert cache.get(("x", False, False)) is None


def test_forget_drops_only_that_layer():
    cache = LayerLookupCache()
    cache.put(("x", False, False), Layer(pk=7, slug="x"), ttl=10)
    cache.put(("y", False, False), Layer(pk=8, slug="y"), ttl=10)
    cache.forget(7)
    assert cache.get(("x", False, False)) is None and cache.get(("y", False, False)) is not None


def test_second_lookup_within_the_ttl_runs_no_sql(committed):
    first, first_queries = _lookup()
    second, second_queries = _lookup()
    assert (first_queries, second_queries) == (1, 0)
    assert second.data_version == first.data_version


def test_a_data_change_in_this_process_is_seen_at_once(committed):
    layer, _ = _lookup()
    layer_data_changed.send(sender=Layer, layer_id=layer.pk)
    _, queries = _lookup()
    assert queries == 1


def test_saving_the_layer_drops_its_entry(committed):
    layer, _ = _lookup()
    Layer.objects.get(pk=layer.pk).save(update_fields=["title_en"])
    _, queries = _lookup()
    assert queries == 1


def test_nothing_read_inside_a_transaction_is_kept(committed):
    with transaction.atomic():
        _lookup()
    _, queries = _lookup()
    assert queries == 1


def test_private_and_public_readers_get_separate_entries(committed):
    _lookup()
    assert LAYER_LOOKUPS.get((SLUG, True, False)) is None
    assert LAYER_LOOKUPS.get((SLUG, False, False)) is not None
