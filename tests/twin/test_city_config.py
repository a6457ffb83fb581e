# SPDX-License-Identifier: AGPL-3.0-or-later
"""``city.toml`` parsing: strict, described, paths resolved next to the file."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from pydantic import BaseModel

from twin.cities import config as city_config
from twin.cities.config import CityConfigError, config_path_for, load_config

HUE_TOML = Path(settings.CITY_FIXTURES_DIR) / "hue" / "city.toml"


def _models() -> list[type[BaseModel]]:
    return [value for value in vars(city_config).values()
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == city_config.__name__]


def _absolute(text: str) -> str:
    return re.sub(r'^file = "(.*)"$', lambda m: f'file = "{(HUE_TOML.parent / m.group(1)).resolve()}"', text,
                  flags=re.M)


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_city_config_field_is_described_and_unknown_keys_are_refused(model):
    assert model.model_config.get("extra") == "forbid"
    assert [name for name, f in model.model_fields.items() if not f.description] == []


def test_hue_config_resolves_paths_next_to_the_toml_file():
    cfg = load_config(HUE_TOML)
    assert cfg.slug == "hue" and cfg.province.code == "46"
    assert cfg.province.file == (HUE_TOML.parent.parent.parent / "admin" / "vn_provinces_2025.geojson").resolve()
    assert all(path.is_file() for path in cfg.source_files())
    assert [layer.slug for layer in cfg.osm.layers][:2] == ["hue-buildings", "hue-roads"]


def test_default_city_is_found_by_slug_under_the_fixtures_folder():
    assert config_path_for(settings.DEFAULT_CITY, settings.CITY_FIXTURES_DIR) == HUE_TOML


def test_poi_type_outside_the_poi_kind_is_refused(tmp_path):
    text = _absolute(HUE_TOML.read_text(encoding="utf-8")).replace(
        'tags = { amenity = ["police"] }', 'tags = { amenity = ["police"] }\npoi_type = "gendarmerie"')
    (tmp_path / "city.toml").write_text(text, encoding="utf-8")
    with pytest.raises(CityConfigError, match=r"osm\.layers\.4: Value error, poi_type 'gendarmerie' needs"):
        load_config(tmp_path / "city.toml")


def test_repeated_layer_slug_is_refused(tmp_path):
    text = _absolute(HUE_TOML.read_text(encoding="utf-8")).replace('slug = "hue-museums"', 'slug = "hue-hotels"')
    (tmp_path / "city.toml").write_text(text, encoding="utf-8")
    with pytest.raises(CityConfigError, match=r"layer slugs must be unique; repeated: hue-hotels"):
        load_config(tmp_path / "city.toml")


def test_missing_config_file_is_refused(tmp_path):
    with pytest.raises(CityConfigError, match=r"city config not found"):
        load_config(tmp_path / "nowhere.toml")
