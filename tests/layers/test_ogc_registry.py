# SPDX-License-Identifier: AGPL-3.0-or-later
"""The layer-kind registry: one registration per kind, derived queryables, cached providers."""
from __future__ import annotations

import pytest
from pydantic import Field

from layers import registry
from layers.collections import readable_collection
from layers.errors import UnknownProvider
from layers.providers.postgis import FeatureProvider, FeatureProviderConfig
from layers.query import Queryable
from tests.layers.ogc_fixtures import *  # noqa: F403
from tests.layers.ogc_fixtures import json_of
from tests.twin.factories import make_layer
from twin import kinds
from twin.roles import Capability


class KioskProps(kinds.OpenProps):
    kiosk_type: str = Field(default="info", title="Loại ki-ốt / Kiosk type")
    screens: int = 1
    open_24h: bool = False


KIOSK = kinds.FeatureKind("kiosk", "Ki-ốt", "Kiosk", kinds.POINT, KioskProps)


def test_builtin_kinds_all_have_a_spec_with_a_provider_and_style():
    for kind in kinds.all_kinds():
        spec = registry.kind_spec(kind.name)
        assert spec.provider in registry.PROVIDERS and spec.default_style, kind.name


def test_queryables_are_derived_from_the_kind_model_plus_core_columns():
    fields = {q.name: q for q in registry.derive_queryables("camera")}
    assert {"geometry", "name", "status", "height_m", "last_seen", "updated_at"} <= set(fields)
    assert fields["heading_deg"].type == "number" and fields["stream_url"].type == "string"
    assert "analytics" not in fields  # a list
    assert fields["status"].enum == ("active", "inactive", "offline", "degraded", "maintenance", "retired")


def test_a_new_kind_is_served_with_one_registration(client, hue):
    with kinds.registered(KIOSK), registry.registered(registry.LayerKindSpec(
            "kiosk", temporal="last_seen", default_style={"type": "circle", "fill": "#123456"})):
        layer = make_layer("kiosk", city=hue, public=True)
        schema = json_of(client.get(f"/collections/{layer.slug}/queryables"))
        assert schema["properties"]["screens"]["type"] == "integer"
        assert schema["properties"]["open_24h"]["type"] == "boolean"
        assert schema["properties"]["last_seen"]["x-ogc-role"] == "primary-instant"
        assert json_of(client.get(f"/collections/{layer.slug}"))["x-citytwin"]["style"]["fill"] == "#123456"
    assert registry.kind_spec("kiosk").default_style == {}  # restored


def test_a_kind_can_require_a_capability_to_read(client, hue, planner_token):
    with registry.registered(registry.LayerKindSpec("agency", read_capability=Capability.READ_KPIS)):
        layer = make_layer("agency", "Point", city=hue, public=True)
        assert client.get(f"/collections/{layer.slug}").status_code == 404
        assert client.get(f"/collections/{layer.slug}", HTTP_AUTHORIZATION=f"Bearer {planner_token}").status_code == 404


def test_providers_are_built_once_and_cached():
    config = FeatureProviderConfig(layer_id=1, kind="road")
    first = registry.load_provider(config)
    assert isinstance(first, FeatureProvider) and registry.load_provider(config) is first
    registry.clear_caches()
    assert registry.load_provider(config) is not first


def test_an_unknown_provider_type_is_a_configuration_error():
    class Odd(FeatureProviderConfig):
        type: str = "nowhere"

    with pytest.raises(UnknownProvider):
        registry.load_provider(Odd(layer_id=1, kind="road"))


@pytest.mark.django_db
def test_a_layer_kind_spec_may_declare_its_own_queryables(client, hue):
    custom = (Queryable("geometry", "geometry", "f.geom", sortable=False), Queryable("name", "string", "f.name"))
    with registry.registered(registry.LayerKindSpec("water", queryables=custom)):
        collection = readable_collection(None, "hue-rivers")
        assert set(collection.provider.fields()) == {"geometry", "name"}


def test_providers_declare_capabilities_as_flags():
    from layers.providers.events import EventProvider
    from layers.providers.observations import ObservationProvider

    assert FeatureProvider.supports_tiles and not ObservationProvider.supports_tiles
    assert not EventProvider.supports_tiles
