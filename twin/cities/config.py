# SPDX-License-Identifier: AGPL-3.0-or-later
"""A city described as data: the typed form of ``city.toml``.

``load-city`` reads one TOML file per city (``fixtures/cities/<slug>/city.toml``
or any path given with ``--config``) into :class:`CityConfig`. Unknown keys
are refused, every file path is resolved relative to the TOML file and must
exist, and layer slugs must be unique, so a typo fails before anything is
written. Nothing about a particular city lives in code.
"""
from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      model_validator)

from twin.errors import InvalidInput
from twin.kinds import PoiType, TouristSiteProps

logger = logging.getLogger(__name__)

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
POI_TYPES = frozenset(get_args(PoiType))
SITE_TYPES = frozenset(get_args(TouristSiteProps.model_fields["site_type"].annotation))


class CityConfigError(InvalidInput):
    """The city description cannot be read or does not validate."""

    code = "InvalidCityConfig"


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Resolve ``value`` against the TOML file's folder and require the file to exist."""
    base = (info.context or {}).get("base_dir")
    path = value if value.is_absolute() or base is None else Path(base) / value
    path = path.resolve()
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


DataFile = Annotated[Path, AfterValidator(_resolve_path)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LayerDisplay(Strict):
    """How a layer is named, styled and shared; the data comes from elsewhere."""

    slug: str = Field(pattern=SLUG_PATTERN, description="URL id of the layer, unique in the database "
                      "(prefix it with the city slug, e.g. 'hue-buildings').")
    title_vi: str = Field(min_length=1, description="Vietnamese title, shown first.")
    title_en: str = Field(default="", description="English title.")
    description: str = Field(default="", description="What the layer holds.")
    style: dict[str, Any] = Field(default_factory=dict, description="Default map style (colours, radius, extrusion).")
    is_public: bool = Field(default=False, description="Readable without logging in.")
    attribution: str = Field(default="", description="Attribution line shown on the map and in exports; "
                             "defaults to the source's attribution.")


class AdminFields(Strict):
    """Property names in an administrative-areas file (defaults: the Vietnamese Provinces Database)."""

    code: str = Field(default="code", description="Official unit code.")
    name: str = Field(default="name", description="Short Vietnamese name.")
    name_en: str = Field(default="nameEn", description="Short English name.")
    full_name: str = Field(default="fullName", description="Full Vietnamese name (with 'Phường', 'Tỉnh' ...).")
    full_name_en: str = Field(default="fullNameEn", description="Full English name.")
    area_km2: str = Field(default="areaKm2", description="Official area in km².")
    parent_code: str = Field(default="province_code", description="Code of the parent unit (wards only).")


class ProvinceConfig(Strict):
    file: DataFile = Field(description="Vector file (GeoJSON) of provinces; all of them are loaded.")
    code: str = Field(min_length=1, description="Official code of this city's province (46 for Huế).")
    fields: AdminFields = Field(default_factory=AdminFields, description="Property names in the file.")
    attribution: str = Field(description="Licence and attribution of the file.")
    layer: LayerDisplay = Field(description="The national provinces layer (no city: shared by every city).")


class WardsConfig(Strict):
    file: DataFile = Field(description="Vector file (GeoJSON) of the city's wards and communes.")
    fields: AdminFields = Field(default_factory=AdminFields, description="Property names in the file.")
    attribution: str = Field(description="Licence and attribution of the file.")
    layer: LayerDisplay = Field(description="The city's wards layer.")


class AgencyContact(Strict):
    hotline: str | None = Field(default=None, description="Emergency or service hotline (113, 114, 115 ...).")
    phone: str | None = Field(default=None, description="Switchboard phone number.")
    email: str | None = Field(default=None, description="Contact e-mail address.")
    address: str | None = Field(default=None, description="Postal address.")
    website: str | None = Field(default=None, description="Official website.")


class AgencyConfig(Strict):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,49}$", description="Stable id, unique in the database.")
    name_vi: str = Field(min_length=1, description="Official Vietnamese name.")
    name_en: str = Field(default="", description="English name.")
    categories: list[str] = Field(min_length=1, description="Event/report categories it handles; '*' = default "
                                  "handler of its areas.")
    jurisdiction: list[str] = Field(default_factory=lambda: ["province"], description="Areas it covers: "
                                    "'province' (the city's province) or official codes of loaded areas.")
    contact: AgencyContact = Field(default_factory=AgencyContact, description="How to reach it.")


class WardAgencyTemplate(Strict):
    """One agency generated per ward (the ward People's Committee, for instance).

    Templates are Python format strings over the ward's ``code``, ``name``,
    ``name_en``, ``full_name`` and ``full_name_en``.
    """

    code: str = Field(description="Code template, e.g. 'ubnd-{code}'.")
    name_vi: str = Field(description="Vietnamese name template, e.g. 'UBND {full_name}'.")
    name_en: str = Field(default="", description="English name template.")
    categories: list[str] = Field(default_factory=lambda: ["*"], description="Categories handled ('*' = default).")
    contact: AgencyContact = Field(default_factory=AgencyContact, description="Shared contact (e.g. a hotline).")


TagMatch = dict[str, list[str] | Literal["*"]]

OsmExtract = Literal["buildings", "roads", "poi", "tourist_site", "water"]


class OsmLayerConfig(LayerDisplay):
    """One layer cut out of the OSM extract by tags."""

    extract: OsmExtract = Field(description="What to build: buildings (areas with heights), roads (routable "
                                "edges), poi / tourist_site (points or outlines), water (lines and areas).")
    tags: TagMatch = Field(min_length=1, description="OSM tags that select objects: key → list of values, or '*' "
                           "for any value except 'no'. Several keys match with OR.")
    poi_type: str | None = Field(default=None, description="poi_type of every feature; default: the matched tag "
                                 "value (hospital, clinic, police ...).")
    site_type: str | None = Field(default=None, description="site_type of tourist sites; default: the matched "
                                  "tag value when it is a known site type, else 'other'.")
    geometry: Literal["point", "native"] = Field(default="point", description="poi / tourist_site: 'point' turns "
                                                 "areas into a point on their surface, 'native' keeps outlines.")
    properties: dict[str, Any] = Field(default_factory=dict, description="Constant properties added to every "
                                       "feature.")

    @model_validator(mode="after")
    def _options_fit_the_extract(self) -> OsmLayerConfig:
        if self.poi_type is not None and (self.extract != "poi" or self.poi_type not in POI_TYPES):
            raise ValueError(f"poi_type {self.poi_type!r} needs extract = 'poi' and one of {sorted(POI_TYPES)}")
        if self.site_type is not None and (self.extract != "tourist_site" or self.site_type not in SITE_TYPES):
            raise ValueError(f"site_type {self.site_type!r} needs extract = 'tourist_site' and one of "
                             f"{sorted(SITE_TYPES)}")
        if self.geometry == "native" and self.extract not in {"poi", "tourist_site"}:
            raise ValueError("geometry = 'native' applies to poi and tourist_site layers only")
        return self


DEFAULT_KEEP_TAGS = (
    "name", "name:vi", "name:en", "alt_name", "old_name", "official_name", "ref", "operator", "brand",
    "addr:housenumber", "addr:street", "addr:city", "addr:postcode", "phone", "contact:phone", "website",
    "contact:website", "email", "opening_hours", "wikidata", "wikipedia", "heritage", "historic", "religion",
    "building", "building:levels", "height", "amenity", "tourism", "emergency", "healthcare", "stars", "rooms",
    "bridge", "tunnel", "layer", "surface", "access", "junction", "maxspeed", "waterway", "water", "natural",
    "fire_hydrant:type",
)


class OsmConfig(Strict):
    file: DataFile = Field(description="OpenStreetMap extract (.osm.pbf, .osm or .osm.bz2).")
    attribution: str = Field(default="© OpenStreetMap contributors (ODbL 1.0)", description="Required by ODbL.")
    metres_per_level: float = Field(default=3.5, gt=0, le=10, description="Storey height for building:levels.")
    default_building_height_m: float = Field(default=7.0, gt=0, le=1000, description="Height of buildings tagged "
                                             "with neither height nor building:levels (≈ two storeys).")
    keep_tags: list[str] = Field(default_factory=lambda: list(DEFAULT_KEEP_TAGS), description="OSM tags copied "
                                 "into feature properties.")
    layers: list[OsmLayerConfig] = Field(min_length=1, description="Layers cut out of the extract.")


class VectorLayerConfig(LayerDisplay):
    """A layer read as-is from a vector file (GeoJSON, or anything GDAL reads)."""

    file: DataFile = Field(description="The vector file.")
    kind: str = Field(description="Feature kind from twin.kinds (tourist_site, poi, generic ...).")
    geometry_type: str = Field(default="Geometry", description="Layer geometry type (Point, MultiPolygon ...).")
    id_field: str | None = Field(default=None, description="Property holding a stable id; default: row number.")
    name_fields: list[str] = Field(default_factory=lambda: ["name"], description="Properties tried in order "
                                   "for the feature name.")
    default_name: str = Field(default="", description="Name when none of name_fields is set.")
    properties: dict[str, Any] = Field(default_factory=dict, description="Constant properties added to every "
                                       "feature (e.g. site_type).")


class CityConfig(Strict):
    slug: str = Field(pattern=SLUG_PATTERN, description="City id (URLs, layer prefixes).")
    name_vi: str = Field(min_length=1, description="Vietnamese name.")
    name_en: str = Field(default="", description="English name.")
    center: tuple[float, float] | None = Field(default=None, description="Map centre [lon, lat]; default: a "
                                               "point inside the province.")
    zoom: float = Field(default=12, ge=0, le=22, description="Default map zoom.")
    extent_margin_m: float = Field(default=2000, ge=0, le=200_000, description="Metres added around the province's "
                                   "bounding box to make the extent that bounds every write.")
    attribution: str = Field(default="", description="Attribution line for the city as a whole.")
    province: ProvinceConfig = Field(description="Provinces file and this city's province.")
    wards: WardsConfig = Field(description="The city's wards.")
    agencies: list[AgencyConfig] = Field(default_factory=list, description="Agencies and their jurisdictions.")
    ward_agency: WardAgencyTemplate | None = Field(default=None, description="Agency generated for each ward.")
    osm: OsmConfig | None = Field(default=None, description="Layers from an OpenStreetMap extract.")
    layers: list[VectorLayerConfig] = Field(default_factory=list, description="Extra layers from vector files.")

    @model_validator(mode="after")
    def _unique_slugs_and_codes(self) -> CityConfig:
        slugs = [self.province.layer.slug, self.wards.layer.slug, *(layer.slug for layer in self.layers)]
        slugs += [layer.slug for layer in self.osm.layers] if self.osm else []
        repeated = sorted({s for s in slugs if slugs.count(s) > 1})
        if repeated:
            raise ValueError(f"layer slugs must be unique; repeated: {', '.join(repeated)}")
        codes = [agency.code for agency in self.agencies]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"agency codes must be unique; repeated: {', '.join(repeated)}")
        return self

    def source_files(self) -> list[Path]:
        """Every file the city is loaded from."""
        files = [self.province.file, self.wards.file, *(layer.file for layer in self.layers)]
        return files + ([self.osm.file] if self.osm else [])


def load_config(path: Path | str) -> CityConfig:
    """Read and validate a ``city.toml``.

    Raises
    ------
    CityConfigError
        When the file is missing, is not TOML, or does not validate; the
        message names each bad field.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CityConfigError(f"city config not found: {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CityConfigError(f"cannot read city config {path}: {exc}") from None
    try:
        return CityConfig.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()]
        raise CityConfigError(f"invalid city config {path}: " + "; ".join(problems), problems=problems) from None


def config_path_for(slug: str, fixtures_dir: Path | str) -> Path:
    """The ``city.toml`` of a city shipped under ``fixtures_dir``."""
    path = Path(fixtures_dir) / slug / "city.toml"
    if not path.is_file():
        known = sorted(p.parent.name for p in Path(fixtures_dir).glob("*/city.toml"))
        raise CityConfigError(f"no city {slug!r} in {fixtures_dir} (known: {', '.join(known) or 'none'}); "
                              "use --config to load a city from elsewhere")
    return path
