# SPDX-License-Identifier: AGPL-3.0-or-later
"""Read vector files (GeoJSON first, anything GDAL reads otherwise) into EPSG:4326 records.

GeoJSON is parsed with the standard library so properties keep their JSON
types (lists stay lists); a legacy ``crs`` member other than WGS 84 is
honoured by reprojecting with pyproj. Other formats go through pyogrio.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer

from twin.cities.config import VectorLayerConfig
from twin.errors import InvalidInput
from twin.services.features import FeatureRow

logger = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)
GEOJSON_SUFFIXES = frozenset({".geojson", ".json"})


@dataclass(slots=True)
class VectorRecord:
    """One feature of a file: 1-based position, properties (no nulls) and its geometry in lon/lat."""

    row: int
    properties: dict[str, Any]
    geom: shapely.Geometry | None


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_records(path: Path) -> list[VectorRecord]:
    """All features of ``path`` with lon/lat geometries.

    Raises
    ------
    InvalidInput
        When the file cannot be parsed.
    """
    try:
        if path.suffix.lower() in GEOJSON_SUFFIXES:
            return list(_read_geojson(path))
        return list(_read_with_gdal(path))
    except (OSError, ValueError, KeyError, TypeError, shapely.errors.GEOSException) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None


def _read_geojson(path: Path) -> Iterator[VectorRecord]:
    data = json.loads(path.read_text(encoding="utf-8"))
    features = data["features"] if data.get("type") == "FeatureCollection" else [data]
    crs_name = ((data.get("crs") or {}).get("properties") or {}).get("name")
    transformer = None
    if crs_name:
        crs = CRS.from_user_input(crs_name)
        if not crs.equals(WGS84, ignore_axis_order=True):
            transformer = Transformer.from_crs(crs, WGS84, always_xy=True)
    for row, feature in enumerate(features, start=1):
        geom = shapely.geometry.shape(feature["geometry"]) if feature.get("geometry") else None
        if geom is not None and transformer is not None:
            geom = shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        props = {k: v for k, v in (feature.get("properties") or {}).items() if v is not None}
        if "id" in feature and "id" not in props:
            props["id"] = feature["id"]
        yield VectorRecord(row, props, geom)


def _read_with_gdal(path: Path) -> Iterator[VectorRecord]:
    import pyogrio

    frame = pyogrio.read_dataframe(path)
    if frame.crs is not None and not frame.crs.equals(WGS84):
        frame = frame.to_crs(4326)
    columns = [c for c in frame.columns if c != frame.geometry.name]
    for row, (geom, values) in enumerate(zip(frame.geometry.values, frame[columns].itertuples(index=False)),
                                         start=1):
        props = {c: _clean(v) for c, v in zip(columns, values)}
        yield VectorRecord(row, {k: v for k, v in props.items() if v is not None}, geom)


def layer_rows(cfg: VectorLayerConfig) -> list[FeatureRow]:
    """Feature rows for a configured vector layer (ids from ``id_field`` or the row number)."""
    rows = []
    for record in read_records(cfg.file):
        props = record.properties
        external_id = props.get(cfg.id_field) if cfg.id_field else record.row
        name = next((str(props[f]) for f in cfg.name_fields if props.get(f) not in (None, "")), cfg.default_name)
        rows.append(FeatureRow(external_id="" if external_id is None else str(external_id), geom=record.geom,
                               properties={**props, **cfg.properties}, name=name[:300], row=record.row))
    return rows
