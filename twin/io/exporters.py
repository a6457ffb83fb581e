# SPDX-License-Identifier: AGPL-3.0-or-later
"""Export a layer to GeoJSON (streamed, RFC 7946) or GeoPackage (in chunks).

Both read features through a server-side cursor, a few thousand rows at a
time, so a layer of a million features never sits in memory whole. Both
carry the layer's attribution: GeoJSON as the foreign members
``attribution`` and ``layer`` of the FeatureCollection (RFC 7946 §6.1),
GeoPackage as dataset and layer metadata and in ``gpkg_contents.description``.
Files are written beside the target and renamed into place when complete,
so a failed export never leaves half a file under the real name.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely
from django.db import connection, transaction

from twin.errors import InvalidInput
from twin.io.readers import JSON_COLUMNS_KEY
from twin.models import FeatureStatus, Layer, last_seen_sql

logger = logging.getLogger(__name__)

FORMATS = {"geojson": (".geojson", ".json"), "gpkg": (".gpkg",)}
FETCH_CHUNK = 5_000
GPKG_CHUNK = 50_000
GEOJSON_DECIMALS = 7  # about 1 cm: more digits only add noise (RFC 7946 §11.2)
CORE_FIELDS = ("name", "status", "height_m", "last_seen")
# Names our own columns use; a property with one of these names is written as ``prop_<name>``.
RESERVED_NAMES = frozenset({"id", "fid", "geom", "geometry", *CORE_FIELDS})
_GPKG_TYPES = {"POINT": "Point", "LINESTRING": "LineString", "POLYGON": "Polygon", "MULTIPOINT": "MultiPoint",
               "MULTILINESTRING": "MultiLineString", "MULTIPOLYGON": "MultiPolygon"}


class TextSink(Protocol):
    def write(self, text: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class ExportFilter:
    """Optional filters: a lon/lat bounding box (west, south, east, north) and a status.

    ``ids`` narrows the export to exactly these feature primary keys, in this
    order: the result of a query (nearest, in an area, along a line, an OGC
    items filter), so every query result is exported by the same writers.
    ``extra`` adds computed values per feature id (``distance_m``...) to its
    properties; they win over stored properties of the same name.
    """

    bbox: tuple[float, float, float, float] | None = None
    status: str | None = None
    ids: tuple[int, ...] | None = None
    extra: Mapping[int, Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.bbox is not None:
            west, south, east, north = self.bbox
            if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
                raise InvalidInput("bbox must be west,south,east,north in degrees with west < east and south < north")
        if self.status is not None and self.status not in FeatureStatus.values:
            raise InvalidInput(f"unknown status {self.status!r}; known: {', '.join(FeatureStatus.values)}")


def format_for(output: str, explicit: str | None) -> str:
    """The export format: ``explicit``, else from the file extension; ``-`` (stdout) is GeoJSON."""
    if explicit:
        if explicit not in FORMATS:
            raise InvalidInput(f"unknown format {explicit!r}; known: {', '.join(FORMATS)}")
        return explicit
    if output == "-":
        return "geojson"
    suffix = Path(output).suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    raise InvalidInput(f"cannot tell the format from {output!r}; use a .geojson or .gpkg name, or --format")


def layer_header(layer: Layer) -> dict[str, Any]:
    """Metadata that travels with every export of ``layer``."""
    return {
        "slug": layer.slug, "title_vi": layer.title_vi, "title_en": layer.title_en, "kind": layer.kind,
        "geometry_type": layer.geometry_type, "description": layer.description,
        "city": layer.city.slug if layer.city_id else None,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _where(layer: Layer, filt: ExportFilter) -> tuple[str, list[Any]]:
    # The envelope is built in the column's SRID (4326) so the GiST index is used.
    sql, params = "f.layer_id = %s", [layer.pk]
    if filt.bbox is not None:
        sql += " AND ST_Intersects(f.geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
        params += list(filt.bbox)
    if filt.status is not None:
        sql += " AND f.status = %s"
        params.append(filt.status)
    return sql, params


def _source(filt: ExportFilter) -> tuple[str, list[Any]]:
    """The relation to read as ``f``: the feature table, or the listed ids with their extras and order."""
    if filt.ids is None:
        return "twin_feature f", []
    extra = filt.extra or {}
    listed = json.dumps([{"id": fid, "n": n, "x": extra.get(fid) or {}} for n, fid in enumerate(filt.ids)],
                        ensure_ascii=False, default=str)
    return ("(SELECT t.id, t.layer_id, t.external_id, t.name, t.status, t.height_m, t.geom, "
            "t.properties || x.x AS properties, x.n AS ord__ FROM jsonb_to_recordset(%s::jsonb) "
            "AS x(id bigint, n integer, x jsonb) JOIN twin_feature t ON t.id = x.id) f", [listed])


def _order(filt: ExportFilter) -> str:
    return "f.ord__" if filt.ids is not None else "f.external_id"


def count_features(layer: Layer, filt: ExportFilter) -> int:
    source, head = _source(filt)
    where, params = _where(layer, filt)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {source} WHERE {where}", head + params)
        return int(cursor.fetchone()[0])


def _stream_rows(layer: Layer, filt: ExportFilter, geometry_sql: str) -> Iterator[tuple]:
    """Yield (external_id, name, status, height_m, last_seen, properties, geometry) in id order.

    In external id order, or in the order of ``filt.ids``. A named
    (server-side) cursor fetches :data:`FETCH_CHUNK` rows at a time.
    """
    source, head = _source(filt)
    where, params = _where(layer, filt)
    sql = (f"SELECT f.external_id, f.name, f.status, f.height_m, {last_seen_sql('f')}, f.properties, {geometry_sql} "
           f"FROM {source} WHERE {where} ORDER BY {_order(filt)}")
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, head + params)
        while batch := cursor.fetchmany(FETCH_CHUNK):
            yield from batch


def _properties(name: str, status: str, height_m: float | None, last_seen: datetime | None,
                properties: Any) -> dict[str, Any]:
    """Core fields first, then the JSON properties (renamed ``prop_x`` if they clash)."""
    if isinstance(properties, str):
        properties = json.loads(properties)
    out: dict[str, Any] = {"name": name, "status": status, "height_m": height_m,
                           "last_seen": last_seen.isoformat() if last_seen else None}
    for key, value in (properties or {}).items():
        out[f"prop_{key}" if key.lower() in RESERVED_NAMES else key] = value
    return out


def _progress(total: int, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit=" features", leave=False, disable=not enabled)


def write_geojson(layer: Layer, sink: TextSink, filt: ExportFilter | None = None, *, progress: bool = False) -> int:
    """Stream ``layer`` as a GeoJSON FeatureCollection into ``sink``; return the feature count.

    ``id`` is the feature's external id; coordinates are EPSG:4326 lon/lat
    with at most :data:`GEOJSON_DECIMALS` decimals. The header carries the
    foreign members ``attribution`` and ``layer``.
    """
    filt = filt or ExportFilter()
    header = {"type": "FeatureCollection", "name": layer.slug, "attribution": layer.attribution,
              "layer": layer_header(layer)}
    head = json.dumps(header, ensure_ascii=False)
    sink.write(head[:-1] + ', "features": [\n')
    count = 0
    with _progress(count_features(layer, filt), f"exporting {layer.slug}", progress) as bar:
        for ext_id, name, status, height_m, last_seen, props, geometry in _stream_rows(
                layer, filt, f"ST_AsGeoJSON(f.geom, {GEOJSON_DECIMALS})"):
            properties = json.dumps(_properties(name, status, height_m, last_seen, props), ensure_ascii=False)
            sink.write(("" if count == 0 else ",\n") + f'{{"type": "Feature", "id": {json.dumps(ext_id)}, '
                       f'"geometry": {geometry}, "properties": {properties}}}')
            count += 1
            bar.update(1)
    sink.write("\n]}\n")
    return count


@dataclass(frozen=True, slots=True)
class _Column:
    key: str  # property key in Feature.properties
    name: str  # column name in the GeoPackage
    kind: str  # str, bool, int, float or json


def _gpkg_schema(layer: Layer, filt: ExportFilter) -> list[_Column]:
    """One typed column per property key, found in SQL so no feature is held in memory.

    JSON numbers that are all integral become integer columns; keys whose
    values mix types, or hold lists or objects, become JSON text columns
    (listed in the layer metadata so ``twin import`` parses them back).
    """
    source, head = _source(filt)
    where, params = _where(layer, filt)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.key, array_agg(DISTINCT jsonb_typeof(p.value)), bool_and(CASE WHEN jsonb_typeof(p.value) "
            "= 'number' THEN (p.value #>> '{}')::numeric %% 1 = 0 AND abs((p.value #>> '{}')::numeric) < 9e18 "
            f"ELSE true END) FROM {source}, jsonb_each(f.properties) p WHERE {where} "
            "GROUP BY p.key ORDER BY p.key", head + params)
        found = cursor.fetchall()
    used = {n.lower() for n in ("id", *CORE_FIELDS)}
    columns = []
    for key, types, integral in found:
        kinds = set(types) - {"null"}
        kind = {frozenset({"string"}): "str", frozenset({"boolean"}): "bool", frozenset(): "str",
                frozenset({"number"}): "int" if integral else "float"}.get(frozenset(kinds), "json")
        name = key if key.lower() not in RESERVED_NAMES | used else f"prop_{key}"
        while name.lower() in used:  # SQLite column names are case-insensitive
            name = f"{name}_"
        used.add(name.lower())
        columns.append(_Column(key, name, kind))
    return columns


def _gpkg_geometry_type(layer: Layer, filt: ExportFilter) -> tuple[str, bool]:
    """(GeoPackage geometry type, promote to multi): one type, its multi form, or Unknown."""
    source, head = _source(filt)
    where, params = _where(layer, filt)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT GeometryType(f.geom) FROM {source} WHERE {where}", head + params)
        types = {_GPKG_TYPES.get(row[0], "Unknown") for row in cursor.fetchall()}
    if len(types) == 1:
        return types.pop(), False
    dims = {t.removeprefix("Multi") for t in types}
    if len(dims) == 1 and "Unknown" not in types:
        return "Multi" + dims.pop(), True
    if not types and layer.geometry_type in _GPKG_TYPES.values():
        return layer.geometry_type, False
    return "Unknown", False


def _gpkg_frame(rows: list[tuple], columns: list[_Column]) -> gpd.GeoDataFrame:
    data: dict[str, Any] = {
        "id": [r[0] for r in rows], "name": [r[1] for r in rows], "status": [r[2] for r in rows],
        "height_m": pd.array([r[3] for r in rows], dtype="Float64"),
        "last_seen": [r[4].isoformat() if r[4] else None for r in rows],
    }
    props = [json.loads(r[5]) if isinstance(r[5], str) else (r[5] or {}) for r in rows]
    for column in columns:
        values = [p.get(column.key) for p in props]
        if column.kind == "json":
            data[column.name] = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        elif column.kind in ("bool", "int", "float"):
            dtype = {"bool": "boolean", "int": "Int64", "float": "Float64"}[column.kind]
            data[column.name] = pd.array(values, dtype=dtype)
        else:
            data[column.name] = pd.array(values, dtype=object)
    geometry = shapely.from_wkb([bytes(r[6]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"), crs="EPSG:4326")


def write_gpkg(layer: Layer, path: Path, filt: ExportFilter | None = None, *, progress: bool = False) -> int:
    """Write ``layer`` as a GeoPackage table named after its slug; return the feature count."""
    filt = filt or ExportFilter()
    columns = _gpkg_schema(layer, filt)
    geometry_type, promote = _gpkg_geometry_type(layer, filt)
    header = layer_header(layer)
    description = "\n".join(t for t in (layer.description, f"Attribution: {layer.attribution}"
                                        if layer.attribution else "") if t)
    first = {
        "dataset_metadata": {"attribution": layer.attribution, "layer": layer.slug, "generator": "CityTwin"},
        "layer_metadata": {**{k: str(v or "") for k, v in header.items()}, "attribution": layer.attribution,
                           JSON_COLUMNS_KEY: json.dumps([c.name for c in columns if c.kind == "json"])},
        "layer_options": {"DESCRIPTION": description, "IDENTIFIER": layer.title_vi or layer.slug},
    }
    count, chunk = 0, []
    with _progress(count_features(layer, filt), f"exporting {layer.slug}", progress) as bar:
        for row in _stream_rows(layer, filt, "ST_AsBinary(f.geom)"):
            chunk.append(row)
            if len(chunk) >= GPKG_CHUNK:
                _append_gpkg(path, layer.slug, _gpkg_frame(chunk, columns), geometry_type, promote, first, count)
                bar.update(len(chunk))
                count, chunk, first = count + len(chunk), [], {}
        if chunk or count == 0:
            _append_gpkg(path, layer.slug, _gpkg_frame(chunk, columns), geometry_type, promote, first, count)
            count += len(chunk)
            bar.update(len(chunk))
    return count


def _append_gpkg(path: Path, table: str, frame: gpd.GeoDataFrame, geometry_type: str, promote: bool,
                 first: dict, written: int) -> None:
    pyogrio.write_dataframe(frame, path, layer=table, driver="GPKG", geometry_type=geometry_type,
                            promote_to_multi=promote or None, append=written > 0, **first)


CSV_POINT_COLUMNS = ("lon", "lat", "wkt", "attribution")
_CSV_GEOMETRY_SQL = (f"ST_X(ST_PointOnSurface(f.geom)), ST_Y(ST_PointOnSurface(f.geom)), "
                     f"ST_AsText(f.geom, {GEOJSON_DECIMALS})")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def write_csv(layer: Layer, sink: TextSink, filt: ExportFilter | None = None) -> int:
    """Write ``layer`` as CSV (RFC 4180) into ``sink``; return the feature count.

    Columns: ``id`` (external id), the core fields, one column per property
    key (lists and objects as JSON text), then ``lon``/``lat`` of a
    representative point (``ST_PointOnSurface``: inside a polygon, on a
    line), ``wkt`` (the whole geometry, EPSG:4326) and ``attribution``.
    CSV has no metadata and rows travel without their file, so the
    attribution is repeated on every row instead of a ``#`` line that
    spreadsheets would show as data. The caller picks the encoding (the HTTP
    export uses UTF-8 with a BOM, which Excel needs to read Vietnamese).
    """
    filt = filt or ExportFilter()
    columns = _gpkg_schema(layer, filt)
    names = [f"prop_{c.name}" if c.name.lower() in CSV_POINT_COLUMNS else c.name for c in columns]
    writer = csv.writer(sink)
    writer.writerow(["id", *CORE_FIELDS, *names, *CSV_POINT_COLUMNS])
    count = 0
    for ext_id, name, status, height_m, last_seen, props, lon, lat, wkt in _stream_rows(layer, filt,
                                                                                        _CSV_GEOMETRY_SQL):
        props = json.loads(props) if isinstance(props, str) else (props or {})
        writer.writerow([ext_id, name, status, _csv_cell(height_m), last_seen.isoformat() if last_seen else "",
                         *(_csv_cell(props.get(c.key)) for c in columns), round(lon, GEOJSON_DECIMALS),
                         round(lat, GEOJSON_DECIMALS), wkt, layer.attribution])
        count += 1
    return count


def export_layer(layer: Layer, output: str, fmt: str, filt: ExportFilter | None = None, *,
                 stdout: TextSink | None = None, progress: bool = False) -> int:
    """Export to ``output`` (``-`` for GeoJSON on ``stdout``); the file appears only when complete."""
    if output == "-":
        if fmt != "geojson" or stdout is None:
            raise InvalidInput("only GeoJSON can be written to standard output")
        return write_geojson(layer, stdout, filt, progress=progress)
    target = Path(output)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}{target.suffix}")
    partial.unlink(missing_ok=True)
    try:
        if fmt == "gpkg":
            count = write_gpkg(layer, partial, filt, progress=progress)
        else:
            with partial.open("w", encoding="utf-8") as handle:
                count = write_geojson(layer, handle, filt, progress=progress)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("exported %d features of %s to %s", count, layer.slug, target)
    return count
