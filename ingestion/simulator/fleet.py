# SPDX-License-Identifier: AGPL-3.0-or-later
"""Register a simulated fleet as features of the city, placed on real places.

The ingestion workers accept readings only from registered devices (a
sensor feature whose ``external_id`` is the topic's device id), so the
simulator registers its fleet first, through ``twin.services`` like any
other import: ``ensure_layer`` + ``write_features`` with ``replace=True``.
Running it again changes nothing (same ids, same places: the choice is
seeded), and a smaller fleet removes the devices it no longer has — each
group's layer belongs to the simulator.

Places come from the loaded city, never from code: air stations at the
point on surface of features of the configured site layers (taken in turn
from each layer, named ones first), gauges spread along the named river's
lines in their drawing (OpenStreetMap: flow) direction, fire panels in a
seeded sample of buildings.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field

import shapely
from django.contrib.gis.db.models.functions import PointOnSurface
from pyproj import Geod
from shapely.ops import linemerge, substring

from ingestion.simulator.config import AirGroup, FireGroup, FleetConfig, Group, WaterGroup
from ingestion.simulator.streams import DeviceSpec
from ingestion.topics import TopicScheme
from twin.errors import InvalidInput
from twin.models import City, Feature, Layer
from twin.services import FeatureRow, LayerSpec, ensure_layer, write_features

logger = logging.getLogger(__name__)

VENDOR = "CityTwin simulator"
GEOD = Geod(ellps="WGS84")
REPEAT_SHIFT_DEG = 0.0003   # ~32 m east: a second station at an already used site


@dataclass(frozen=True, slots=True)
class Site:
    """A place a device goes: a name and a lon/lat point."""

    name: str
    lon: float
    lat: float


@dataclass(slots=True)
class RegisteredFleet:
    """The registered devices, in group order, and their layers."""

    devices: list[DeviceSpec] = field(default_factory=list)
    layers: dict[str, Layer] = field(default_factory=dict)

    def count(self, group: str) -> int:
        return sum(1 for d in self.devices if d.group == group)


def _points(queryset) -> list[Site]:
    rows = (queryset.annotate(anchor=PointOnSurface("geom")).order_by("external_id")
            .values_list("name", "external_id", "anchor"))
    return [Site(name or f"#{external_id}", anchor.x, anchor.y) for name, external_id, anchor in rows]


def air_sites(city: City, group: AirGroup) -> list[Site]:
    """One site per station: the site layers taken in turn, named features first."""
    per_layer = []
    for slug in group.sites:
        features = Feature.objects.filter(layer__slug=slug, layer__city=city)
        named = _points(features.exclude(name=""))
        per_layer.append(named + _points(features.filter(name="")))
    candidates = [layer[i] for i in range(max(map(len, per_layer), default=0)) for layer in per_layer
                  if i < len(layer)]
    if not candidates:
        raise InvalidInput(f"no feature in the air-station site layers {list(group.sites)} of {city.slug}")
    sites = []
    for n in range(group.count):
        site = candidates[n % len(candidates)]
        shift = (n // len(candidates)) * REPEAT_SHIFT_DEG
        sites.append(Site(site.name, site.lon + shift, site.lat))
    return sites


def river_sites(city: City, group: WaterGroup) -> list[Site]:
    """Gauges evenly spread along the river (the longest merged stretch), first one upstream."""
    geoms = Feature.objects.filter(layer__slug=group.river_layer, layer__city=city, name=group.river_name,
                                   geom__isnull=False).values_list("geom", flat=True)
    lines = [shapely.from_wkb(bytes(g.wkb)) for g in geoms if g.geom_type in ("LineString", "MultiLineString")]
    if not lines:
        raise InvalidInput(f"no line named {group.river_name!r} in layer {group.river_layer} of {city.slug}")
    merged = linemerge(shapely.union_all(lines))
    parts = list(merged.geoms) if hasattr(merged, "geoms") else [merged]
    river = max(parts, key=lambda part: part.length)
    points = [river.interpolate((i + 0.5) / group.count, normalized=True) for i in range(group.count)]
    return [Site(f"{group.river_name} km {river_km(river, p):.1f}", p.x, p.y) for p in points]


def river_km(river, point) -> float:
    """Distance from the river line's start to ``point`` along it, in km on the WGS 84 ellipsoid."""
    upstream = substring(river, 0, river.project(point))
    return GEOD.geometry_length(upstream) / 1000


def building_sites(city: City, group: FireGroup, seed: int) -> list[Site]:
    """A seeded sample of buildings (the same buildings on every run), panel at the point on surface."""
    buildings = Feature.objects.filter(layer__slug=group.buildings_layer, layer__city=city)
    ids = sorted(buildings.values_list("external_id", flat=True))
    if len(ids) < group.count:
        raise InvalidInput(f"layer {group.buildings_layer} has {len(ids)} buildings, fewer than {group.count} panels")
    chosen = random.Random(f"{seed}:buildings").sample(ids, group.count)
    points = {external_id: Site(name or f"#{external_id}", anchor.x, anchor.y) for name, external_id, anchor in
              buildings.filter(external_id__in=chosen).annotate(anchor=PointOnSurface("geom"))
              .values_list("name", "external_id", "anchor")}
    return [points[external_id] for external_id in chosen]


GROUP_NAMES = {"air": ("Trạm quan trắc không khí", "Air-quality station"),
               "water": ("Trạm đo mực nước", "Water-level gauge"),
               "fire": ("Tủ báo cháy", "Fire-alarm panel")}


def _properties(name: str, group: Group) -> dict:
    if isinstance(group, AirGroup):
        measures = ["pm25", "pm10"] if group.pm10_ratio else ["pm25"]
        return {"sensor_type": "air_quality", "unit": "µg/m³", "measures": measures, "vendor": VENDOR}
    if isinstance(group, WaterGroup):
        return {"sensor_type": "water_level", "unit": "m", "measures": ["currentLevel"],
                "thresholds": dict(group.thresholds), "vendor": VENDOR}
    return {"sensor_type": "fire_alarm", "unit": "state", "measures": ["alert", "status"], "vendor": VENDOR}


def device_id(group: Group, n: int) -> str:
    """``PREFIX-0001``: stable, sortable, a valid topic level."""
    return f"{group.id_prefix}-{n + 1:04d}"


def _sites(city: City, group: Group, seed: int) -> list[Site]:
    if isinstance(group, AirGroup):
        return air_sites(city, group)
    if isinstance(group, WaterGroup):
        return river_sites(city, group)
    return building_sites(city, group, seed)


def register_group(city: City, name: str, group: Group, seed: int) -> Layer:
    """Create or update the group's layer and write its devices (idempotent; extra devices removed)."""
    display = group.layer
    layer = ensure_layer(LayerSpec(kind="sensor", geometry_type="Point", **display.model_dump()), city=city)
    sites = _sites(city, group, seed) if group.count else []
    label_vi, label_en = GROUP_NAMES[name]
    rows = [FeatureRow(external_id=device_id(group, n), name=f"{label_vi} {n + 1} — {site.name}",
                       geom=shapely.Point(site.lon, site.lat), properties=_properties(name, group))
            for n, site in enumerate(sites)]
    report = write_features(layer, rows, replace=True, on_invalid="reject")
    logger.info("%s (%s): %s", layer.slug, label_en, report.summary())
    return layer


def register_fleet(cfg: FleetConfig) -> RegisteredFleet:
    """Register every group of the fleet in its city; returns the devices to simulate."""
    city = City.objects.filter(slug=cfg.city).first()
    if city is None:
        raise InvalidInput(f"city {cfg.city!r} is not loaded: run `twin load-city {cfg.city}` first")
    layers = {name: register_group(city, name, getattr(cfg, name), cfg.seed)
              for name in ("air", "water", "fire") if getattr(cfg, name) is not None}
    return RegisteredFleet(devices=fleet_devices(cfg), layers=layers)


def fleet_devices(cfg: FleetConfig) -> list[DeviceSpec]:
    """The devices of ``cfg``, without touching the database (``twin simulate --no-register``)."""
    scheme = TopicScheme(root=cfg.topic_root)
    devices = []
    for name in ("air", "water", "fire"):
        group = getattr(cfg, name)
        for n in range(group.count if group is not None else 0):
            ident = device_id(group, n)
            devices.append(DeviceSpec(group=name, device_id=ident, index=n,
                                      topic_prefix=scheme.device_topic(cfg.city, "sensor", ident, "")))
    return devices


__all__ = ["RegisteredFleet", "Site", "air_sites", "building_sites", "device_id", "fleet_devices", "register_fleet",
           "register_group", "river_sites"]
