# SPDX-License-Identifier: AGPL-3.0-or-later
"""Turn OSM highway ways into a routable edge list.

A way is cut at every *junction* — a node that two or more road ways use,
or that one way uses twice — and at its ends, so every edge runs between
two network nodes, recorded as OSM node ids in ``source``/``target`` (the
pgRouting / OSRM convention). Edges of different ways meet exactly where
their node ids are equal. Lengths are geodesic on the WGS 84 ellipsoid.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Geod

from twin.cities import osm_tags

logger = logging.getLogger(__name__)

_GEOD = Geod(ellps="WGS84")


@dataclass(slots=True)
class RoadWay:
    """One highway way as read: node ids and their coordinates (NaN when the extract lacks the node)."""

    way_id: int
    tags: dict[str, str]
    refs: np.ndarray
    lons: np.ndarray
    lats: np.ndarray


@dataclass(slots=True)
class Edge:
    way: RoadWay
    index: int
    source: int
    target: int
    geom: shapely.LineString
    length_m: float


@dataclass(slots=True)
class SplitReport:
    edges: list[Edge] = field(default_factory=list)
    ways: int = 0
    dropped_nodes: int = 0
    dropped_ways: list[int] = field(default_factory=list)
    zero_length_edges: int = 0


def _clean(way: RoadWay) -> tuple[RoadWay, int]:
    """Drop nodes without a location and consecutive repeats of the same node."""
    keep = np.isfinite(way.lons) & np.isfinite(way.lats)
    dropped = int((~keep).sum())
    refs, lons, lats = way.refs[keep], way.lons[keep], way.lats[keep]
    if len(refs) > 1:
        distinct = np.concatenate(([True], refs[1:] != refs[:-1]))
        refs, lons, lats = refs[distinct], lons[distinct], lats[distinct]
    return RoadWay(way.way_id, way.tags, refs, lons, lats), dropped


def split_ways(ways: Sequence[RoadWay]) -> SplitReport:
    """Cut ways into edges at junction nodes.

    Parameters
    ----------
    ways:
        Highway ways in any order.

    Returns
    -------
    SplitReport
        The edges (in way order) and what had to be dropped: nodes missing
        from the extract, ways left with fewer than two nodes, and edges of
        zero length (distinct node ids at one location).
    """
    report = SplitReport(ways=len(ways))
    cleaned: list[RoadWay] = []
    for way in ways:
        way, dropped = _clean(way)
        report.dropped_nodes += dropped
        if len(way.refs) < 2:
            report.dropped_ways.append(way.way_id)
        else:
            cleaned.append(way)
    if not cleaned:
        return report
    all_refs = np.concatenate([w.refs for w in cleaned])
    _, inverse, counts = np.unique(all_refs, return_inverse=True, return_counts=True)
    shared = counts[inverse] > 1
    offset = 0
    for way in cleaned:
        is_junction = shared[offset:offset + len(way.refs)]
        offset += len(way.refs)
        inner = np.flatnonzero(is_junction[1:-1]) + 1
        cuts = np.concatenate(([0], inner, [len(way.refs) - 1]))
        for index, (start, end) in enumerate(zip(cuts[:-1], cuts[1:])):
            lons, lats = way.lons[start:end + 1], way.lats[start:end + 1]
            length = float(_GEOD.line_length(lons, lats))
            if length == 0.0:
                report.zero_length_edges += 1
                continue
            report.edges.append(Edge(way=way, index=index, source=int(way.refs[start]), target=int(way.refs[end]),
                                     geom=shapely.linestrings(np.column_stack((lons, lats))),
                                     length_m=round(length, 2)))
    return report


def edge_properties(edge: Edge, kept: Mapping[str, str]) -> dict:
    """RoadProps for an edge: network fields computed from the way's tags, plus kept tags."""
    tags = edge.way.tags
    return {
        **kept,
        "highway": tags["highway"],
        "source": edge.source,
        "target": edge.target,
        "oneway": osm_tags.oneway(tags),
        "length_m": edge.length_m,
        "osm_way_id": edge.way.way_id,
        "maxspeed_kmh": osm_tags.maxspeed_kmh(tags.get("maxspeed")),
        "lanes": osm_tags.lanes(tags.get("lanes")),
    }
