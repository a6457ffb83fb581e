# SPDX-License-Identifier: AGPL-3.0-or-later
"""Exports of any query result: GeoJSON, GeoPackage, CSV and an offline kepler.gl map.

Every result (OGC items with their filters, nearest, within, in an area,
in a polygon, along a line, per ward) becomes a :class:`ResultSet`: which
features of which layer, in which order, with which computed values
(``distance_m``...). :func:`export_response` serialises it with the same
writers as ``twin export`` (:mod:`twin.io.exporters`), so a file from the
API and one from the command line carry the same columns and attribution:

- ``json`` / ``geojson``: RFC 7946 FeatureCollection, ``attribution`` and
  ``layer`` members, plus ``numberReturned`` and ``links``;
- ``gpkg``: GeoPackage, attribution in the dataset/layer metadata;
- ``csv``: UTF-8 with a BOM (Excel then reads Vietnamese), ``lon``/``lat``
  of a representative point, ``wkt``, and ``attribution`` on every row;
- ``kepler``: one HTML file that opens offline (:mod:`layers.kepler`).

OGC items: ``/collections/{id}/export?<items parameters>&f=`` is
:func:`export_items`, and ``layers.api.items`` hands ``/items?...&f=gpkg|csv|kepler``
to the same view. Callers holding a parsed :class:`~layers.query.FeatureQuery`
use :func:`export_query`.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import OperationalError, connection, transaction

from layers.collections import Collection, readable_collection
from layers.crs import CRS84
from layers.errors import InvalidInput, NotSupported, QueryTooExpensive
from layers.kepler import kepler_html
from layers.ogc import GEOJSON, Answer, ApiRequest, link
from layers.providers.postgis import FeatureProvider, run_sql
from layers.query import FeatureQuery, parse_feature_query
from twin.io.exporters import ExportFilter, write_csv, write_geojson, write_gpkg
from twin.models import Layer
from twin.spatial import MatchPage

logger = logging.getLogger(__name__)

MEDIA_TYPES = {
    "json": GEOJSON, "geojson": GEOJSON, "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8", "kepler": "text/html; charset=utf-8",
}
FILE_FORMATS = ("geojson", "gpkg", "csv", "kepler")
EXTENSIONS = {"geojson": "geojson", "gpkg": "gpkg", "csv": "csv", "kepler": "html"}
MAX_EXPORT_FEATURES = 100_000
DEFAULT_EXPORT_TIMEOUT_MS = 60_000


@dataclass(frozen=True, slots=True)
class ResultSet:
    """A query result ready to serialise.

    ``layer`` is the layer whose rows are read; it may be an unsaved copy
    with another ``slug``/``attribution`` (per-ward results read the wards
    layer but are named after, and credit, the counted layer too).
    ``extra`` maps feature ids to computed values added to properties.
    """

    layer: Layer
    ids: tuple[int, ...]
    name: str
    title: str
    attribution: str
    extra: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    has_more: bool = False
    color_by: str | None = None  # kepler: colour the features by this numeric property (choropleth)

    @classmethod
    def from_matches(cls, layer: Layer, page: MatchPage, *, name: str, title: str,
                     attribution: str) -> ResultSet:
        extra = {m.feature_id: {k: round(v, 2) for k, v in m.values.items()} for m in page if m.values}
        return cls(layer, tuple(m.feature_id for m in page), name, title, attribution, extra, page.has_more)

    def export_filter(self) -> ExportFilter:
        return ExportFilter(ids=self.ids, extra=self.extra)

    def source_layer(self) -> Layer:
        """The layer as the writers should describe it: this result's attribution, never saved."""
        view = copy.copy(self.layer)
        view.attribution = self.attribution
        return view


def parse_format(raw: str | None, allowed: Sequence[str] = ("json", *FILE_FORMATS)) -> str:
    """``f``: one of ``allowed`` (default ``json``)."""
    value = (raw or "json").strip().lower()
    aliases = {"application/geo+json": "geojson", "application/json": "json", "html": "kepler", "gpkg": "gpkg",
               "geopackage": "gpkg", "text/csv": "csv"}
    value = aliases.get(value, value)
    if value not in allowed:
        raise InvalidInput(f"parameter 'f' must be one of {', '.join(allowed)}")
    return value


def export_timeout_ms() -> int:
    return int(getattr(settings, "LAYERS_EXPORT_STATEMENT_TIMEOUT_MS", DEFAULT_EXPORT_TIMEOUT_MS))


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    """One transaction with ``statement_timeout`` for a whole export (several statements)."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true), set_config('jit', 'off', true)",
                               [str(export_timeout_ms())])
            yield
    except OperationalError as exc:
        if type(exc.__cause__).__name__ != "QueryCanceled":
            raise
        logger.warning("export cancelled after %s ms", export_timeout_ms())
        raise QueryTooExpensive("the export took too long; narrow the query") from None


def _geojson_text(result: ResultSet) -> tuple[str, int]:
    sink = io.StringIO()
    with bounded():
        count = write_geojson(result.source_layer(), sink, result.export_filter())
    return sink.getvalue(), count


def feature_collection(result: ResultSet, links: list[dict[str, str]],
                       members: Mapping[str, Any] | None = None) -> tuple[str, int]:
    """The GeoJSON of ``result`` with ``numberReturned``, ``timeStamp``, ``links`` and ``members`` added."""
    text, count = _geojson_text(result)
    tail = {"numberReturned": count, "timeStamp": _now(), "links": links, **(members or {})}
    # The writer always ends with "]}\n": close the features array, then add our members.
    return text.rstrip()[:-1] + ", " + json.dumps(tail, ensure_ascii=False)[1:], count


def export_links(req: ApiRequest, formats: Sequence[str] = FILE_FORMATS) -> list[dict[str, str]]:
    """``self`` plus one ``alternate`` link per export format of the same query."""
    links = [link(req.with_params(), "self", GEOJSON)]
    links += [link(req.with_params(f=fmt), "alternate", MEDIA_TYPES[fmt].split(";")[0], f"Export {fmt}")
              for fmt in formats]
    return links


def _attachment(result: ResultSet, fmt: str) -> dict[str, str]:
    filename = f"{result.name}.{EXTENSIONS[fmt]}"
    return {"Content-Disposition": f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"}


def export_response(result: ResultSet, fmt: str, links: list[dict[str, str]] | None = None,
                    members: Mapping[str, Any] | None = None) -> Answer:
    """Serialise ``result`` as ``fmt`` (``json``, ``geojson``, ``gpkg``, ``csv`` or ``kepler``).

    Returns the ``(status, headers, body)`` of :mod:`layers.ogc`; ``body`` is
    bytes for GeoPackage and CSV. ``links``/``members`` go into the JSON forms.
    """
    if fmt in {"json", "geojson"}:
        text, _ = feature_collection(result, links or [], members)
        headers = {"Content-Type": GEOJSON, "Content-Crs": "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"}
        return 200, {**headers, **(_attachment(result, fmt) if fmt == "geojson" else {})}, text
    if fmt == "gpkg":
        with tempfile.TemporaryDirectory(prefix="citytwin-export-") as folder:
            path = Path(folder) / f"{result.name}.gpkg"
            with bounded():
                write_gpkg(result.source_layer(), path, result.export_filter())
            body = path.read_bytes()
    elif fmt == "csv":
        sink = io.StringIO()
        with bounded():
            write_csv(result.source_layer(), sink, result.export_filter())
        body = ("\ufeff" + sink.getvalue()).encode("utf-8")
    elif fmt == "kepler":
        text, _ = _geojson_text(result)
        body = kepler_html(json.loads(text), dataset=result.title, title=result.title,
                           attribution=result.attribution, city=result.layer.city,
                           color_by=result.color_by).encode("utf-8")
    else:
        raise InvalidInput(f"parameter 'f' must be one of json, {', '.join(FILE_FORMATS)}")
    return 200, {"Content-Type": MEDIA_TYPES[fmt], **_attachment(result, fmt)}, body


# --- OGC items results --------------------------------------------------------------------------

def feature_layer(found: Collection) -> Layer:
    """The layer behind a collection of features; other collections have no spatial queries or exports."""
    if found.layer is None or not isinstance(found.provider, FeatureProvider):
        raise NotSupported(f"collection {found.id!r} is not a feature layer; spatial queries and exports "
                           "work on feature layers")
    return found.layer


def matching_ids(provider: FeatureProvider, q: FeatureQuery) -> list[int]:
    """Ids of the features ``q`` selects, in its order, up to ``q.limit + 1`` (the provider's own SQL)."""
    where = provider.where(q)
    order = ", ".join(f"{expr} {direction}" for expr, direction in provider.order_terms(q))
    sql = f"SELECT f.id FROM {provider.from_sql} WHERE {where.sql} ORDER BY {order} LIMIT %s OFFSET %s"
    return [row[0] for row in run_sql(sql, [*where.params, q.limit + 1, q.offset])]


def export_query(req: ApiRequest, found: Collection, q: FeatureQuery, fmt: str, *, capped: bool = True) -> Answer:
    """Export what ``q`` selects in ``found``; with ``capped``, more than ``q.limit`` matches is a 400.

    ``capped`` is for requests without ``limit``: an export must not be
    silently cut at :data:`MAX_EXPORT_FEATURES`.
    """
    if q.crs.uri != CRS84:
        raise NotSupported("parameter 'crs': exports are written in WGS 84 longitude/latitude (CRS84), "
                           "with the CRS recorded in the file; for other coordinates page through "
                           "/items?crs=… or reproject the file in QGIS")
    layer = feature_layer(found)
    ids = matching_ids(found.provider, q)
    if len(ids) > q.limit and capped:
        raise InvalidInput(f"more than {q.limit} features match; narrow the query (bbox, datetime, filter) or "
                           f"set limit (at most {MAX_EXPORT_FEATURES}) and offset to export it in parts")
    result = ResultSet(layer, tuple(ids[:q.limit]), name=f"{found.id}-items", title=found.title("vi"),
                       attribution=found.attribution, has_more=len(ids) > q.limit)
    links = export_links(req)
    links.append(link(req.url(f"/collections/{quote(found.id, safe='')}"), "collection", "application/json"))
    return export_response(result, fmt, links)


def export_items(req: ApiRequest, collection_id: str) -> Answer:
    """``/collections/{id}/export``: the items parameters (bbox, datetime, filter, ...) plus ``f``."""
    found = readable_collection(req.user, collection_id)
    provider = found.provider
    feature_layer(found)
    params = {k: v for k, v in req.params.items() if k != "f"}
    fmt = parse_format(req.params.get("f"), FILE_FORMATS) if "f" in req.params else "geojson"
    explicit = bool(params.get("limit", "").strip())
    if not explicit:
        params["limit"] = str(MAX_EXPORT_FEATURES)
    q = parse_feature_query(params, provider.fields(), temporal=provider.temporal, allowed=("lang",),
                            max_limit=MAX_EXPORT_FEATURES)
    return export_query(req, found, q, fmt, capped=not explicit)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
