# SPDX-License-Identifier: AGPL-3.0-or-later
"""Cut layers out of an OpenStreetMap extract with pyosmium.

One streaming pass over the file (plus libosmium's relation pre-pass for
multipolygons) feeds every configured layer:

- ``buildings``: areas (closed ways and multipolygon relations) with a height
  from :func:`twin.cities.osm_tags.building_height`;
- ``roads``: highway ways (not ``area=yes``) split into routable edges by
  :mod:`twin.cities.roads`;
- ``poi`` / ``tourist_site``: nodes, areas (as a point on the surface, or the
  outline with ``geometry = "native"``) and open ways (a point on the line);
- ``water``: ``waterway=*`` ways as lines and water areas as polygons.

External ids are the OSM ones: ``n123``, ``w123``, ``r123`` and, for road
edges, ``w123-0``, ``w123-1`` … in way order.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import osmium
import shapely
from osmium.filter import KeyFilter

from twin.cities import osm_tags
from twin.cities.config import POI_TYPES, SITE_TYPES, OsmConfig, OsmLayerConfig
from twin.cities.roads import RoadWay, edge_properties, split_ways
from twin.services.features import FeatureRow

logger = logging.getLogger(__name__)

# Keys whose features are lines by definition (OSM wiki, Key:waterway), even on a closed way.
LINEAR_KEYS = frozenset({"waterway"})
MAX_NAME = 300


@dataclass(slots=True)
class OsmLayerResult:
    config: OsmLayerConfig
    rows: list[FeatureRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class OsmRead:
    layers: list[OsmLayerResult]
    broken_geometries: int = 0


@dataclass(slots=True)
class _Pending:
    """Geometry kept as WKB until the end, then decoded in one vectorised call."""

    external_id: str
    wkb: str | bytes
    properties: dict[str, Any]
    name: str
    height_m: float | None = None
    to_point: bool = False


class _Collector:
    def __init__(self, cfg: OsmConfig) -> None:
        self.cfg = cfg
        self.keep = tuple(cfg.keep_tags)
        self.factory = osmium.geom.WKBFactory()
        self.pending: dict[str, list[_Pending]] = {layer.slug: [] for layer in cfg.layers}
        self.road_ways: dict[str, list[RoadWay]] = {layer.slug: [] for layer in cfg.layers if layer.extract == "roads"}
        self.by_extract: dict[str, list[OsmLayerConfig]] = {}
        self.broken = 0
        for layer in cfg.layers:
            self.by_extract.setdefault(layer.extract, []).append(layer)

    def _layers(self, *extracts: str) -> Iterable[OsmLayerConfig]:
        for extract in extracts:
            yield from self.by_extract.get(extract, ())

    def _kept(self, tags: Mapping[str, str]) -> dict[str, str]:
        return {key: tags[key] for key in self.keep if key in tags}

    def node(self, node, tags: dict[str, str]) -> None:
        for layer in self._layers("poi", "tourist_site"):
            match = osm_tags.matches(tags, layer.tags)
            if match and node.location.valid():
                self._point_like(layer, f"n{node.id}", self.factory.create_point(node), tags, match, to_point=False)

    def way(self, way, tags: dict[str, str]) -> None:
        for layer in self._layers("roads"):
            if tags.get("area") != "yes" and osm_tags.matches(tags, layer.tags):
                self.road_ways[layer.slug].append(_road_way(way, tags))
        closed = way.is_closed()
        for layer in self._layers("poi", "tourist_site"):
            match = osm_tags.matches(tags, layer.tags)
            if match and not closed and (line := self._line(way)) is not None:
                self._point_like(layer, f"w{way.id}", line, tags, match, to_point=True)
        for layer in self._layers("water"):
            linear = {k: v for k, v in layer.tags.items() if k in LINEAR_KEYS}
            if linear and osm_tags.matches(tags, linear) and (line := self._line(way)) is not None:
                self._add(layer, _Pending(f"w{way.id}", line, self._water_props(tags), _name(tags)))

    def area(self, area, tags: dict[str, str]) -> None:
        external_id = f"{'w' if area.from_way() else 'r'}{area.orig_id()}"
        wkb = None
        for layer in self._layers("buildings", "poi", "tourist_site", "water"):
            selector = layer.tags
            if layer.extract == "water":
                selector = {k: v for k, v in layer.tags.items() if k not in LINEAR_KEYS}
            match = osm_tags.matches(tags, selector) if selector else None
            if not match:
                continue
            if wkb is None:
                try:
                    wkb = self.factory.create_multipolygon(area)
                except RuntimeError:  # libosmium could not assemble a valid ring
                    self.broken += 1
                    return
            if layer.extract == "buildings":
                self._add(layer, self._building(external_id, wkb, tags, match))
            elif layer.extract == "water":
                self._add(layer, _Pending(external_id, wkb, self._water_props(tags), _name(tags)))
            else:
                self._point_like(layer, external_id, wkb, tags, match, to_point=layer.geometry == "point")

    def _line(self, way) -> str | None:
        try:
            return self.factory.create_linestring(way, osmium.geom.use_nodes.UNIQUE)
        except RuntimeError:  # fewer than two distinct located nodes
            self.broken += 1
            return None

    def _add(self, layer: OsmLayerConfig, item: _Pending) -> None:
        item.properties = {**layer.properties, **item.properties}
        self.pending[layer.slug].append(item)

    def _building(self, external_id: str, wkb, tags: dict[str, str], match: tuple[str, str]) -> _Pending:
        height, source, levels = osm_tags.building_height(
            tags, metres_per_level=self.cfg.metres_per_level, default_m=self.cfg.default_building_height_m)
        props = {**self._kept(tags), "building": match[1], "levels": levels, "height_source": source}
        return _Pending(external_id, wkb, props, _name(tags), height_m=height)

    def _water_props(self, tags: dict[str, str]) -> dict[str, Any]:
        return {**self._kept(tags), "waterway": tags.get("waterway"), "water": tags.get("water")}

    def _point_like(self, layer: OsmLayerConfig, external_id: str, wkb, tags: dict[str, str],
                    match: tuple[str, str], *, to_point: bool) -> None:
        props: dict[str, Any] = self._kept(tags)
        if layer.extract == "poi":
            props["poi_type"] = layer.poi_type or (match[1] if match[1] in POI_TYPES else "other")
            props["phone"] = tags.get("phone") or tags.get("contact:phone")
            props["address"] = _address(tags)
        else:
            props["site_type"] = layer.site_type or (match[1] if match[1] in SITE_TYPES else "other")
            props["name_en"] = tags.get("name:en")
        self._add(layer, _Pending(external_id, wkb, props, _name(tags), to_point=to_point))


def _road_way(way, tags: dict[str, str]) -> RoadWay:
    nodes = way.nodes
    refs = np.fromiter((n.ref for n in nodes), dtype=np.int64, count=len(nodes))
    coords = np.array([(n.lon, n.lat) if n.location.valid() else (np.nan, np.nan) for n in nodes], dtype=float)
    return RoadWay(way.id, tags, refs, coords[:, 0], coords[:, 1])


def _name(tags: Mapping[str, str]) -> str:
    return (tags.get("name") or tags.get("name:vi") or tags.get("name:en") or "")[:MAX_NAME]


def _address(tags: Mapping[str, str]) -> str | None:
    parts = [tags.get("addr:housenumber"), tags.get("addr:street"), tags.get("addr:city")]
    text = " ".join(p for p in parts[:2] if p)
    if parts[2]:
        text = f"{text}, {parts[2]}" if text else parts[2]
    return text or None


def _finish(pending: list[_Pending]) -> list[FeatureRow]:
    if not pending:
        return []
    geoms = shapely.from_wkb(np.asarray([p.wkb for p in pending], dtype=object))
    to_point = np.asarray([p.to_point for p in pending])
    if to_point.any():
        geoms[to_point] = shapely.point_on_surface(geoms[to_point])
    return [FeatureRow(external_id=p.external_id, geom=g, properties=p.properties, name=p.name,
                       height_m=p.height_m, row=i + 1) for i, (p, g) in enumerate(zip(pending, geoms))]


def read_osm(cfg: OsmConfig, *, progress: bool = False) -> OsmRead:
    """Read the extract once and return the rows of every configured layer, in config order.

    Objects whose geometry libosmium cannot build (a way with one located
    node, a multipolygon with broken rings) are skipped and counted.
    """
    collector = _Collector(cfg)
    keys = sorted({key for layer in cfg.layers for key in layer.tags})
    processor = osmium.FileProcessor(str(cfg.file)).with_areas(KeyFilter(*keys)).with_filter(KeyFilter(*keys))
    objects: Iterable = processor
    if progress:
        from tqdm import tqdm

        objects = tqdm(processor, desc=f"reading {cfg.file.name}", unit=" objects", leave=False)
    for obj in objects:
        kind = obj.type_str()
        if kind == "r":
            continue
        tags = dict(obj.tags)
        if kind == "n":
            collector.node(obj, tags)
        elif kind == "w":
            collector.way(obj, tags)
        elif kind == "a":
            collector.area(obj, tags)
    results = []
    for layer in cfg.layers:
        result = OsmLayerResult(layer, _finish(collector.pending[layer.slug]))
        if layer.extract == "roads":
            _road_rows(collector, layer, result)
        results.append(result)
    return OsmRead(results, collector.broken)


def _road_rows(collector: _Collector, layer: OsmLayerConfig, result: OsmLayerResult) -> None:
    split = split_ways(collector.road_ways[layer.slug])
    for i, edge in enumerate(split.edges):
        props = {**layer.properties, **edge_properties(edge, collector._kept(edge.way.tags))}
        result.rows.append(FeatureRow(external_id=f"w{edge.way.way_id}-{edge.index}", geom=edge.geom,
                                      properties=props, name=_name(edge.way.tags), row=i + 1))
    if split.dropped_nodes:
        result.notes.append(f"{split.dropped_nodes} road node(s) missing from the extract were skipped")
    if split.dropped_ways:
        result.notes.append(f"{len(split.dropped_ways)} way(s) with fewer than two located nodes were skipped")
    if split.zero_length_edges:
        result.notes.append(f"{split.zero_length_edges} zero-length edge(s) skipped")
    result.notes.append(f"{split.ways} ways → {len(split.edges)} routable edges")
